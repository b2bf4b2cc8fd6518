"""The payment provider's webhooks (DESIGN §13): ``/webhooks/stripe/``. Only a request whose
signature the provider's library verifies is stored; it is processed by a task after commit
(subscriptions/services/provider_events.py), so the provider gets its answer at once."""

import logging

from django.http import HttpResponse, HttpResponseBadRequest
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.gateways.stripe_webhooks import InvalidWebhook, verify_event
from subscriptions.services.provider_events import provider_event_receive

logger = logging.getLogger(__name__)


@csrf_exempt  # the provider's servers post it; the signature is the authentication
@require_POST
def stripe_webhook(request):
    try:
        event = verify_event(payload=request.body,
                             signature=request.headers.get("Stripe-Signature"))
    except InvalidWebhook as error:
        logger.warning("Stripe webhook refused: %s", error)
        return HttpResponseBadRequest(f"Webhook refusé : {error}.",
                                      content_type="text/plain; charset=utf-8")
    _stored, created = provider_event_receive(event=event, now=timezone.now())
    return HttpResponse("ok" if created else "déjà reçu", content_type="text/plain; charset=utf-8")
