"""The simulated provider's servers (DESIGN §13): its card fields post here, from the browser,
never to the portal. This is the only code that ever sees a card number."""

import re

from django.http import JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.gateways.base import CardDeclined, CardDetails
from billing.gateways.simulated import SimulatedGateway

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
