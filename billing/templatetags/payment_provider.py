from django import template
from django.conf import settings
from django.template.loader import get_template

from billing.gateways import get_gateway

register = template.Library()


@register.simple_tag(takes_context=True)
def card_fields(context) -> str:
    """The payment provider's own card fields (DESIGN §13), whichever provider is configured:
    its script tokenizes the card and the form posts only ``card_token``."""
    fields = get_template(get_gateway().card_fields_template)
    return fields.render({**context.flatten(),
                          "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY})
