"""CSV the way a French accountant opens it: in Excel with a French locale, so ``;`` between
fields and a decimal comma ("1234,56", no thousands separator, a minus sign for a negative
amount), UTF-8 with a byte-order mark (without it Excel reads "é" as "Ã©"), days in ISO 8601
(2026-11-02, which Excel reads as a date). Column names are French and fixed, whatever the
staff member's language: spreadsheets and scripts look columns up by name. What customers
typed (a name, a company) never starts a formula in Excel (``text``)."""

import csv
import io
from decimal import Decimal

BOM = "\ufeff"


def amount(cents: int) -> str:
    """Integer cents as euros with a decimal comma: 123456 → "1234,56", -5 → "-0,05"."""
    sign = "-" if cents < 0 else ""
    euros, rest = divmod(abs(cents), 100)
    return f"{sign}{euros},{rest:02d}"


def rate(value: Decimal) -> str:
    """A VAT rate with a decimal comma, as stored: Decimal("25.50") → "25,50"."""
    return f"{value:.2f}".replace(".", ",")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text(value: str) -> str:
    """Free text as a cell: one that Excel would run as a formula (``=HYPERLINK(…)``) gets an
    apostrophe first, which Excel shows as text (OWASP's advice on CSV injection)."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def csv_text(header: list[str], rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return BOM + buffer.getvalue()
