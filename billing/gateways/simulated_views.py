"""The simulated provider's own pages (DESIGN §13), standing for the provider's and the bank's
servers, mounted under ``/simulated-provider/`` (``simulated_urls``).

``tokens``: its card fields post here, from the browser, never to the portal. This is the only
code that ever sees a card number.

``challenge``: the bank's 3-D Secure page. The provider's script on the portal's page sends the
cardholder here with the operation's client secret and the portal's return URL; "Valider"
completes the pending operation (the money moves), "Refuser" declines it
(``authentication_failed``); either way the cardholder goes back to the return URL, where the
portal asks the provider what happened. The client secret is the capability, as with a real
provider: no portal login here. GET only shows; the answer is a POST (CSRF)."""

import re

from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from billing.gateways.base import CardDeclined, CardDetails
from billing.gateways.simulated import (
    REQUIRES_ACTION,
    SimulatedGateway,
    challenge_complete,
    challenge_operation,
)

NUMBER = re.compile(r"[0-9]{12,19}")
CVC = re.compile(r"[0-9]{3,4}")
TWO_DIGITS_OR_FOUR = re.compile(r"[0-9]{1,4}")


def _refused(field, message):
    return JsonResponse({"error": field, "message": message}, status=400)


@csrf_exempt  # a provider's endpoint, called cross-site by its own script
@require_POST
def tokens(request):
    data = request.POST
    number = re.sub(r"[\s-]", "", data.get("number", ""))
    month, year, cvc = (data.get(name, "").strip() for name in ("exp_month", "exp_year", "cvc"))
    if not NUMBER.fullmatch(number):
        return _refused("number", _("Ce numéro de carte n'est pas valide."))
    if not (TWO_DIGITS_OR_FOUR.fullmatch(month) and TWO_DIGITS_OR_FOUR.fullmatch(year)
            and 1 <= int(month) <= 12 and 2000 <= int(year) <= 2100):
        return _refused("expiry", _("Indiquez le mois (1 à 12) et l'année d'expiration."))
    if (int(year), int(month)) < (timezone.localdate().year, timezone.localdate().month):
        return _refused("expiry", _("Cette carte a expiré."))
    if not CVC.fullmatch(cvc):
        return _refused("cvc", _("Le cryptogramme compte 3 ou 4 chiffres."))
    try:
        token = SimulatedGateway().tokenize_card(CardDetails(number, int(month), int(year), cvc))
    except CardDeclined:
        return _refused("number", _("Ce numéro de carte n'est pas valide."))
    return JsonResponse({"token": token.token, "brand": token.brand, "last4": token.last4,
                         "exp_month": token.exp_month, "exp_year": token.exp_year})


def _return_url(request, value: str) -> str:
    """Only back to the portal itself: never an open redirect."""
    if value and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()},
                                                 require_https=request.is_secure()):
        return value
    return ""


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def challenge(request):
    source = request.POST if request.method == "POST" else request.GET
    client_secret = source.get("client_secret", "")
    return_url = _return_url(request, source.get("return_url", ""))
    operation = challenge_operation(client_secret)
    if operation is None or not return_url:
        return HttpResponseBadRequest("unknown client secret or return URL")
    if request.method == "POST" and operation.status == REQUIRES_ACTION:
        challenge_complete(client_secret=client_secret,
                           approved=request.POST.get("answer") == "approve")
        return redirect(return_url)
    return render(request, "simulated_provider/challenge.html", {
        "operation": operation,
        "pending": operation.status == REQUIRES_ACTION,
        "client_secret": client_secret,
        "return_url": return_url,
    })
