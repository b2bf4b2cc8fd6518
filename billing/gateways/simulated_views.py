"""The simulated provider's own pages (DESIGN §13), standing for the provider's and the bank's
servers, mounted under ``/simulated-provider/`` (``simulated_urls``).

``challenge``: the bank's 3-D Secure page. The provider's script on the portal's page sends the
cardholder here with the operation's client secret and the portal's return URL; "Valider"
completes the pending operation (the money moves), "Refuser" declines it
(``authentication_failed``); either way the cardholder goes back to the return URL, where the
portal asks the provider what happened. The client secret is the capability, as with a real
provider: no portal login here. GET only shows; the answer is a POST (CSRF)."""

from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from billing.gateways.simulated import REQUIRES_ACTION, challenge_complete, challenge_operation


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
