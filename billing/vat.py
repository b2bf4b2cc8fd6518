"""Which VAT rate an invoice or a price carries (DESIGN §3, §14).

- A consumer in a member state pays that state's standard rate on the day (one-stop shop),
  or the French rate when the vendor stays under the EU distance-sales threshold (VAT_OSS
  off: 10 000 € a year of cross-border sales, article 59 quater of the VAT directive). The
  rates are those of ``billing.vat_rates`` (the law as this code knows it) and the changes
  superusers added since in admin (``VatRate``); the latest change not after the day wins.
- Outside the EU no VAT is charged, unless the vendor is registered there
  (VAT_NON_EU_RATES, e.g. {"CH": "8.1"}).
- A business in another member state with a valid VAT number is invoiced without VAT: it
  accounts for the VAT itself (reverse charge, article 196 of the VAT directive). A French
  business pays French VAT. ``vat_treatment`` is the one place that decides."""

from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as NumberInvalid
from stdnum.util import clean

from accounts.models import CustomerType
from billing.models import VatRate
from billing.vat_rates import EU_COUNTRIES, STANDARD_RATES

HOME_COUNTRY = "FR"


class MissingVatRate(Exception):
    """The table has no rate for this member state on this day (before its start)."""


def vat_day(moment=None) -> date:
    """The day a moment falls on for VAT: the business time zone's (an invoice's date)."""
    if isinstance(moment, date) and not isinstance(moment, datetime):
        return moment
    return timezone.localtime(moment or timezone.now(),
                              ZoneInfo(settings.BUSINESS_TIME_ZONE)).date()


def vat_rate(country: str, *, on=None) -> Decimal:
    """The rate a consumer of ``country`` pays on the day of ``on`` (a date or an aware
    datetime; now by default)."""
    country = (country or "").upper()
    if country not in EU_COUNTRIES:
        configured = settings.VAT_NON_EU_RATES.get(country)
        return Decimal(str(configured)) if configured is not None else Decimal("0")
    if not settings.VAT_OSS:
        country = HOME_COUNTRY
    day = vat_day(on)
    changes = [(valid_from, Decimal(rate)) for valid_from, rate in STANDARD_RATES[country]]
    changes += VatRate.objects.filter(country=country).values_list("valid_from", "rate")
    in_force = [change for change in changes if change[0] <= day]
    if not in_force:
        raise MissingVatRate(f"no VAT rate for {country} on {day}")
    return max(in_force)[1]


class VatTreatment(NamedTuple):
    rate: Decimal
    reverse_charge: bool


def vat_treatment(customer, *, on=None) -> VatTreatment:
    """The rate an invoice or a price of this customer carries on the day of ``on``, and
    whether it is under reverse charge (0 %, "Autoliquidation"): only for a business of
    another member state whose VAT number is valid. Everyone else pays ``vat_rate`` of their
    billing country: a French business French VAT, a consumer their country's rate, a
    customer outside the EU none unless configured."""
    country = (customer.billing_country or "").upper()
    if (customer.customer_type == CustomerType.BUSINESS and country in EU_COUNTRIES
            and country != HOME_COUNTRY and vat_number_valid(customer.vat_number, country)):
        return VatTreatment(Decimal("0"), True)
    return VatTreatment(vat_rate(country, on=on), False)


class VatNumberInvalid(Exception):
    """Why an EU VAT number is refused: ``wrong_country`` (its prefix is another member
    state's) or ``invalid`` (format, length or check digits)."""

    def __init__(self, reason: str, *, prefix: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.prefix = prefix


def vat_prefix(country: str) -> str:
    """The VAT-number prefix of a member state: its ISO code, but EL for Greece."""
    return "EL" if country == "GR" else country


def vat_number_normalize(number: str, country: str) -> str:
    """An EU VAT number of a business of ``country`` as stored: compact, upper case, with its
    country prefix (added when only the national part was typed; GR written EL). Raises
    VatNumberInvalid unless python-stdnum accepts its format and check digits and the prefix
    is the billing country's."""
    prefix = vat_prefix(country.upper())
    compact = clean(number or "", " -./,:").upper().strip()
    if compact.startswith("GR"):
        compact = "EL" + compact[2:]
    typed_prefix = compact[:2]
    if not (typed_prefix.isalpha() and typed_prefix.lower() in eu_vat.MEMBER_STATES | {"el"}):
        compact, typed_prefix = prefix + compact, prefix
    if typed_prefix != prefix:
        raise VatNumberInvalid("wrong_country", prefix=prefix)
    try:
        eu_vat.validate(compact)
    except NumberInvalid as error:
        raise VatNumberInvalid("invalid", prefix=prefix) from error
    return compact


def vat_number_valid(number: str, country: str) -> bool:
    """Whether ``number`` is a valid VAT number of a business of ``country``."""
    if not number:
        return False
    try:
        vat_number_normalize(number, country)
    except VatNumberInvalid:
        return False
    return True
