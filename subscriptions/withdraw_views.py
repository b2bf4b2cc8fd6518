"""The withdrawal function (droit de rétractation, DESIGN §8): "Renoncer au contrat ici" leads
to the statement (name, contract reference, e-mail address for the acknowledgement), which
"Confirmer la rétractation" posts; then the acknowledgement, kept in "Mon compte".

No JavaScript needed: plain pages and a POST with its CSRF token. A refused statement (after
the withdrawal period, an ended contract, another channel) answers 410 Gone, as the refused
email links do: it will never work again."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_http_methods

from subscriptions.models import EndReason, Subscription, SubscriptionEvent
from subscriptions.pages import withdrawable_subscriptions
from subscriptions.rules import refusal_message, withdrawal_refusal
from subscriptions.selectors import withdrawal_quote, withdrawal_until
from subscriptions.services import WithdrawalError, subscription_withdraw
from subscriptions.services.withdraw import withdrawal_from_event


class WithdrawalForm(forms.Form):
    name = forms.CharField(label=_lazy("Votre nom"), max_length=150)
    email = forms.EmailField(label=_lazy("Adresse e-mail pour l'accusé de réception"),
                             max_length=254)


@login_required
def withdraw_shortcut(request):
    """The footer's "Renoncer au contrat ici" (a visitor signs in first, then lands here)."""
    withdrawable = withdrawable_subscriptions(customer=request.user, now=timezone.now())
    if len(withdrawable) == 1:
        return redirect("subscriptions:withdraw", withdrawable[0].pk)
    if not withdrawable:
        messages.info(request, _("Aucun de vos contrats n'est dans son délai de rétractation "
                                 "de 14 jours : il n'y a pas de contrat auquel renoncer."))
    return redirect("subscriptions:billing")


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def withdraw(request, pk):
    """The statement (GET) and its confirmation (POST)."""
    subscription = get_object_or_404(
        Subscription.objects.select_related("plan", "customer"), pk=pk, customer=request.user
    )
    if subscription.end_reason == EndReason.WITHDRAWN:
        return _acknowledgement_redirect(subscription)
    now = timezone.now()
    refusal = withdrawal_refusal(subscription, now=now)
    if refusal is not None:
        return _refused(request, subscription, refusal_message(refusal, subscription))
    user = request.user
    form = WithdrawalForm(
        request.POST if request.method == "POST" else None,
        initial={"name": user.get_full_name(), "email": user.email},
    )
    if form.is_valid():
        try:
            withdrawal, _created = subscription_withdraw(
                subscription=subscription, name=form.cleaned_data["name"],
                email=form.cleaned_data["email"], actor_user=user,
            )
        except WithdrawalError as error:
            return _refused(request, subscription, str(error))
        return redirect("subscriptions:withdrawal_acknowledgement", withdrawal.event.pk)
    return render(request, "subscriptions/withdraw.html", {
        "subscription": subscription,
        "form": form,
        "quote": withdrawal_quote(subscription=subscription, now=now),
        "until": withdrawal_until(subscription),
    })


@login_required
def withdrawal_acknowledgement(request, pk):
    """The acknowledgement, then and later (linked from the history of "Mon compte")."""
    event = get_object_or_404(
        SubscriptionEvent.objects.select_related("subscription__plan"),
        pk=pk, kind=SubscriptionEvent.Kind.WITHDRAWN, subscription__customer=request.user,
    )
    return render(request, "subscriptions/withdrawal_acknowledgement.html", {
        "withdrawal": withdrawal_from_event(event),
        "subscription": event.subscription,
    })


def _acknowledgement_redirect(subscription):
    event = subscription.events.filter(kind=SubscriptionEvent.Kind.WITHDRAWN).last()
    return redirect("subscriptions:withdrawal_acknowledgement", event.pk)


def _refused(request, subscription, message):
    return render(request, "subscriptions/withdraw_refused.html",
                  {"subscription": subscription, "message": message}, status=410)
