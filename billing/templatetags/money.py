from django import template
from django.utils.translation import get_language

register = template.Library()

SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}


@register.filter
def money(amount_cents, currency="EUR"):
    """Integer cents as the customer reads them: "1 234,50 €" in French, "€1,234.50" in
    English; a negative amount (a credit note's) with a minus sign: "−99,00 €"."""
    if amount_cents in (None, ""):
        return ""
    amount_cents = int(amount_cents)
    sign = "\u2212" if amount_cents < 0 else ""
    units, cents = divmod(abs(amount_cents), 100)
    symbol = SYMBOLS.get(currency, currency)
    if (get_language() or "fr").startswith("en"):
        return f"{sign}{symbol}{units:,}.{cents:02d}"
    grouped = f"{units:,}".replace(",", "\u202f")
    return f"{sign}{grouped},{cents:02d}\u00a0{symbol}"


@register.filter
def vat_percent(rate):
    """20.00 → "20", 8.10 → "8,1" (or "8.1" in English)."""
    text = f"{rate.normalize():f}" if rate is not None else ""
    return text if (get_language() or "fr").startswith("en") else text.replace(".", ",")


@register.filter
def negative(amount_cents):
    """A credit note's amount (stored positive) as the customer reads it: negative."""
    if amount_cents in (None, ""):
        return amount_cents
    return -abs(int(amount_cents))
