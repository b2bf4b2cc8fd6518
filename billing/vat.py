from decimal import Decimal

from django.conf import settings


def vat_rate_for_country(country: str) -> Decimal:
    """DESIGN §3: the customer's billing country sets the rate; an unknown country pays FR."""
    rates = settings.VAT_RATES
    return rates.get(country, rates[settings.DEFAULT_VAT_COUNTRY])
