"""Evidence of the customer's location (DESIGN §14): each invoice keeps its billing country and
the issuing country of the card that paid it, when the provider reports one. The two differ:
staff see it on the invoice and filter on it (the customer may live where they say and use a
foreign card, or not; the rate was picked from the billing country)."""

from django.db.models import F, Q

CARD_COUNTRY_MISMATCH = Q(card_country__gt="") & ~Q(card_country=F("billing_country"))
CARD_COUNTRY_MATCH = Q(card_country=F("billing_country"))
CARD_COUNTRY_UNKNOWN = Q(card_country="")


def card_country_mismatch(invoice) -> bool:
    """The card's issuing country is known and is not the billing country."""
    return bool(invoice.card_country) and invoice.card_country != invoice.billing_country
