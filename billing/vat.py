"""Which VAT rate an invoice or a price carries (DESIGN §3, §14).

- A consumer in a member state pays that state's standard rate on the day (one-stop shop),
  or the French rate when the vendor stays under the EU distance-sales threshold (VAT_OSS
  off: 10 000 € a year of cross-border sales, article 59 quater of the VAT directive). The
  rates are those of ``billing.vat_rates`` (the law as this code knows it) and the changes
  superusers added since in admin (``VatRate``); the latest change not after the day wins.
- Outside the EU no VAT is charged, unless the vendor is registered there
  (VAT_NON_EU_RATES, e.g. {"CH": "8.1"})."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

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
