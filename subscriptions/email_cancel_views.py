"""Cancelling from the renewal emails' link (DESIGN §9, last paragraph), without logging in.

GET shows the dialog's recap and a confirm button and changes nothing: mail scanners open
links. Only the POST (with its CSRF token) cancels.

A refused link answers 400 when it is not one of ours (tampered, truncated: a bad request
that no retry will fix) and 410 Gone when it is genuine but has served its purpose (used,
expired, renewed, already cancelled, ended, other channel): it will never work again, which is
what 410 means, rather than 403 (logging in would not help) or 404 (we know the link).
"""

from django.shortcuts import render
from django.utils import timezone, translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.middleware import chosen_language
from subscriptions.email_links import (
    CancelLinkRefused,
    Refusal,
    cancel_link_subscription,
    cancel_link_use,
)
from subscriptions.forms import CancelForm
from subscriptions.rules import reactivate_refusal
from subscriptions.selectors import cancellation_acknowledgement, cancellation_quote
from subscriptions.services import CancellationError


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def email_cancel(request, token):
    now = timezone.now()
    try:
        subscription = cancel_link_subscription(token=token, now=now)
    except CancelLinkRefused as refused:
        return _refused(request, refused)
    _speak_the_customers_language(request, subscription.customer)
    form = CancelForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            subscription, terms = cancel_link_use(
                token=token,
                reason=form.cleaned_data["reason"],
                reason_detail=form.cleaned_data["reason_detail"],
                now=now,
            )
        except CancelLinkRefused as refused:
            return _refused(request, refused)
        except CancellationError as error:  # a rule of the service's own, shown as is
            return _refused(request, CancelLinkRefused(Refusal.REFUSED,
                                                       subscription=subscription),
                            message=str(error))
        return render(request, "subscriptions/email_cancel_done.html", {
            "subscription": subscription,
            "terms": terms,
            "acknowledgement": cancellation_acknowledgement(subscription=subscription),
            "can_reactivate": reactivate_refusal(subscription, now=now) is None,
        })
    subscription.quote = cancellation_quote(subscription=subscription, now=now)
    return render(request, "subscriptions/email_cancel.html", {
        "subscription": subscription,
        "cancel_form": form,
    })


def _speak_the_customers_language(request, customer):
    """The link comes from an email in the customer's language: the page follows it, unless
    a language was picked in the UI."""
    if chosen_language(request) is None and customer.preferred_language:
        translation.activate(customer.preferred_language)
        request.LANGUAGE_CODE = translation.get_language()


def _refused(request, refused: CancelLinkRefused, *, message: str = ""):
    if refused.subscription is not None:
        _speak_the_customers_language(request, refused.subscription.customer)
    return render(
        request,
        "subscriptions/email_cancel_refused.html",
        {
            "reason": str(refused.reason),
            "subscription": refused.subscription,
            "renews_at": refused.claims.renews_at if refused.claims else None,
            "message": message,
        },
        status=400 if refused.reason == Refusal.INVALID else 410,
    )
