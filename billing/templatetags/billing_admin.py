from django import template
from django.conf import settings
from django.utils import timezone

from billing.dunning import charges_beyond_outage_horizon

register = template.Library()


@register.simple_tag
def charges_awaiting_provider() -> dict:
    """Charges beyond the outage horizon, for the admin index (DESIGN §6: staff see them)."""
    return {"count": charges_beyond_outage_horizon(now=timezone.now()).count(),
            "hours": settings.CHARGE_OUTAGE_HORIZON_HOURS}
