"""The standard VAT rates of the 27 member states (DESIGN §3), with the changes since
2021-03-01, the day the portal's table starts (Ireland back at 23 % after its 2020 cut;
Germany was back at 19 % on 2021-01-01). A change announced later is added by a superuser
in admin (``VatRate``) until this list is updated with it.

Countries are ISO 3166 codes (Greece is GR; "EL" is only its VAT-number prefix)."""

from datetime import date

TABLE_STARTS = date(2021, 3, 1)

# country: [(valid_from, rate), ...]
STANDARD_RATES = {
    "AT": [(TABLE_STARTS, "20")],
    "BE": [(TABLE_STARTS, "21")],
    "BG": [(TABLE_STARTS, "20")],
    "CY": [(TABLE_STARTS, "19")],
    "CZ": [(TABLE_STARTS, "21")],
    "DE": [(TABLE_STARTS, "19")],
    "DK": [(TABLE_STARTS, "25")],
    "EE": [(TABLE_STARTS, "20"), (date(2024, 1, 1), "22"), (date(2025, 7, 1), "24")],
    "ES": [(TABLE_STARTS, "21")],
    "FI": [(TABLE_STARTS, "24"), (date(2024, 9, 1), "25.5")],
    "FR": [(TABLE_STARTS, "20")],
    "GR": [(TABLE_STARTS, "24")],
    "HR": [(TABLE_STARTS, "25")],
    "HU": [(TABLE_STARTS, "27")],
    "IE": [(TABLE_STARTS, "23")],
    "IT": [(TABLE_STARTS, "22")],
    "LT": [(TABLE_STARTS, "21")],
    "LU": [(TABLE_STARTS, "17"), (date(2023, 1, 1), "16"), (date(2024, 1, 1), "17")],
    "LV": [(TABLE_STARTS, "21")],
    "MT": [(TABLE_STARTS, "18")],
    "NL": [(TABLE_STARTS, "21")],
    "PL": [(TABLE_STARTS, "23")],
    "PT": [(TABLE_STARTS, "23")],
    "RO": [(TABLE_STARTS, "19"), (date(2025, 8, 1), "21")],
    "SE": [(TABLE_STARTS, "25")],
    "SI": [(TABLE_STARTS, "22")],
    "SK": [(TABLE_STARTS, "20"), (date(2025, 1, 1), "23")],
}

EU_COUNTRIES = frozenset(STANDARD_RATES)

