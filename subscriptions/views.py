from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.forms import BillingDetailsForm, billing_details_complete
from accounts.models import User, country_choices
from billing.forms import CardTokenForm
from billing.gateways import CardDeclined
from billing.messages import decline_message
from billing.selectors import default_card, plan_price
from billing.services import SetupAuthenticationRequired
from billing.views import card_verification_start
from legal.services import terms_acceptance_record
from subscriptions.confirm_views import challenge_redirect, payment_answered
from subscriptions.forms import CancelForm, ResiliationForm
from subscriptions.models import RUNNING_STATUSES, Plan, Subscription
from subscriptions.pages import (
    billing_page,
    cancellable_subscriptions,
    payments_awaiting_the_bank,
    resiliation_recap,
)
from subscriptions.rules import (
    cancel_refusal,
    reactivate_refusal,
    refusal_message,
    restart_refusal,
)
from subscriptions.selectors import (
    cancellation_acknowledgement,
    cancellation_quote,
    sellable_plans,
)
from subscriptions.services import (
    CancellationError,
    Requester,
    SubscribeError,
    subscription_auto_renew_reactivate,
    subscription_cancel,
    subscription_restart,
    subscription_subscribe,
)
from subscriptions.services.payments import ChallengeRequired
from subscriptions.services.renew import PaymentNotPossible, subscription_pay_now


def _country(request):
    return request.user.billing_country if request.user.is_authenticated else "FR"


def plans(request):
    country = _country(request)
    # A visitor sees a French consumer's prices; a customer their own (their VAT treatment).
    price_for = ({"customer": request.user} if request.user.is_authenticated
                 else {"country": country})
    offers = [(plan, plan_price(plan=plan, **price_for)) for plan in sellable_plans()]
    return render(request, "subscriptions/plans.html", {
        "monthly": [o for o in offers if o[0].interval == "month"],
        "annual": [o for o in offers if o[0].interval == "year"],
        "country_name": dict(country_choices()).get(country, country),
        "reverse_charge": any(price.reverse_charge for _plan, price in offers),
    })


@login_required
def subscribe(request, code):
    plan = get_object_or_404(Plan, code=code, is_active=True)
    if request.user.subscriptions.filter(status__in=RUNNING_STATUSES).exists():
        messages.info(request, _("Vous avez déjà un abonnement en cours."))
        return redirect("subscriptions:billing")
    return _checkout(
        request,
        plan=plan,
        title=_("Souscrire à %(plan)s") % {"plan": plan.name},
        pay=lambda token: subscription_subscribe(customer=request.user, plan=plan,
                                                 card_token=token),
    )


@login_required
def restart(request, pk):
    """"Renouveler" an ended subscription: same page and flow as subscribing."""
    subscription = _own_subscription(request, pk)
    refusal = restart_refusal(subscription, now=timezone.now())
    if refusal is not None:
        messages.info(request, refusal_message(refusal, subscription))
        return redirect("subscriptions:billing")
    return _checkout(
        request,
        plan=subscription.plan,
        title=_("Renouveler %(plan)s") % {"plan": subscription.plan.name},
        pay=lambda token: subscription_restart(subscription=subscription, card_token=token),
    )


def _checkout(request, *, plan, title, pay):
    """The card form of a first payment; ``pay(token)`` charges it (None: the saved card).
    The billing details (customer type, business numbers, address) are entered on the same
    page, in a form of their own, and must be complete before anything is paid."""
    details = BillingDetailsForm(
        request.POST if "billing_details" in request.POST else None,
        instance=User.objects.get(pk=request.user.pk), require_address=True,
    )
    if details.is_bound and details.is_valid():
        details.save()
        messages.success(request, _("Vos coordonnées de facturation ont été enregistrées."))
        return redirect(request.path)
    details_complete = billing_details_complete(request.user)
    paying = request.method == "POST" and not details.is_bound
    saved_card = default_card(customer=request.user)
    use_saved = bool(saved_card) and request.POST.get("use_saved_card") == "1"
    form = CardTokenForm(request.POST if paying and not use_saved else None)
    terms_error = (_("Cochez « J'accepte les conditions d'abonnement » pour souscrire.")
                   if paying and request.POST.get("accept_terms") != "1"
                   else "")
    payment_error = ""
    if paying and not details_complete:
        payment_error = _("Complétez vos coordonnées de facturation (adresse, et pour un "
                          "professionnel ses numéros) avant de payer : rien n'a été débité.")
    elif paying and not terms_error and (use_saved or form.is_valid()):
        try:
            subscription = pay(None if use_saved else form.token)
        except CardDeclined as declined:
            payment_error = decline_message(declined.code)
        except SubscribeError as error:
            payment_error = str(error)
        except SetupAuthenticationRequired as pending:
            # The bank confirms the new card first; back here, it is the saved card.
            return card_verification_start(request, pending.setup, then=request.path)
        except ChallengeRequired as required:
            # Accepted now, while the bank confirms the payment (the subscription opens then).
            terms_acceptance_record(customer=request.user,
                                    subscription=required.charge.invoice.subscription)
            return challenge_redirect(required.charge)
        else:
            terms_acceptance_record(customer=request.user, subscription=subscription)
            messages.success(request, _("Bienvenue ! Votre abonnement %(plan)s est actif.")
                             % {"plan": plan.name})
            return redirect("subscriptions:billing")
    return render(request, "subscriptions/subscribe.html", {
        "title": title,
        "plan": plan,
        "price": plan_price(plan=plan, customer=request.user),
        "details": details,
        "details_complete": details_complete,
        "form": form,
        "saved_card": saved_card,
        "terms_error": terms_error,
        "terms_accepted": request.POST.get("accept_terms") == "1",
        "payment_error": payment_error,
    })


@login_required
def billing(request):
    subscriptions = billing_page(customer=request.user, now=timezone.now())
    for subscription in subscriptions:
        if subscription.quote:
            subscription.cancel_form = CancelForm(auto_id=f"id_cancel_{subscription.pk}_%s")
    return render(request, "subscriptions/billing.html", {
        "subscriptions": subscriptions,
        "awaiting_the_bank": payments_awaiting_the_bank(customer=request.user),
        "card": default_card(customer=request.user),
    })


def _own_subscription(request, pk):
    return get_object_or_404(Subscription.objects.select_related("plan"), pk=pk,
                             customer=request.user)


@login_required
def cancel(request, pk):
    """The dialog's form posts here; without JavaScript the button leads here (GET) to the
    same recap on a page of its own."""
    subscription = _own_subscription(request, pk)
    refusal = cancel_refusal(subscription, now=timezone.now())
    if refusal is not None:
        messages.info(request, refusal_message(refusal, subscription))
        return redirect("subscriptions:billing")
    form = CancelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            subscription, terms = subscription_cancel(
                subscription=subscription,
                reason=form.cleaned_data["reason"],
                reason_detail=form.cleaned_data["reason_detail"],
                actor_user=request.user,
            )
        except CancellationError as error:
            messages.error(request, str(error))
        else:
            if terms is not None:
                messages.success(request, _("Votre demande de résiliation a bien été reçue. Un "
                                            "accusé de réception vous a été envoyé par "
                                            "e-mail."))
        return redirect("subscriptions:billing")
    subscription.quote = cancellation_quote(subscription=subscription, now=timezone.now())
    return render(request, "subscriptions/cancel_confirm.html",
                  {"subscription": subscription, "cancel_form": form})


@require_POST
@login_required
def reactivate(request, pk):
    subscription = _own_subscription(request, pk)
    try:
        subscription_auto_renew_reactivate(subscription=subscription, actor_user=request.user)
    except CancellationError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Le renouvellement automatique est de nouveau activé."))
    return redirect("subscriptions:billing")


@require_POST
@login_required
def pay_now(request, pk):
    """"Payer maintenant" for a past-due or suspended subscription. When the bank asks for
    3-D Secure the customer goes on to the challenge, as from "Confirmer votre paiement"."""
    subscription = _own_subscription(request, pk)
    try:
        charge = subscription_pay_now(subscription=subscription, now=timezone.now())
    except PaymentNotPossible as error:
        messages.error(request, str(error))
    except CardDeclined as declined:
        messages.error(request, decline_message(declined.code))
    else:
        return payment_answered(request, charge)
    return redirect("subscriptions:billing")


@login_required
def cancel_shortcut(request):
    """The footer's "Résilier mon contrat" (L215-1-1, D215-1 to D215-3): the recap "Résilier
    votre contrat", where the customer checks and corrects what the request says, may choose a
    later effective date ("Vérifier" shows its effects, changing nothing) and confirms with
    "Confirmer ma demande de résiliation". Confirmed, it leads to the acknowledgement."""
    now = timezone.now()
    cancellable = cancellable_subscriptions(customer=request.user, now=now)
    if request.method != "POST" and not cancellable:
        messages.info(request, _("Vous n'avez aucun abonnement à résilier."))
        return redirect("subscriptions:billing")
    # One running subscription at most; the reference typed on the form decides anyway.
    subscription = cancellable[0] if cancellable else _posted_subscription(request)
    if subscription is None:
        return redirect("subscriptions:billing")
    form = ResiliationForm(request.POST or None, customer=request.user,
                           subscription=subscription, now=now)
    confirmed = request.POST.get("action") != "verify"  # "Vérifier" only shows the effects
    if request.method == "POST" and form.is_valid() and confirmed:
        try:
            subscription, _terms = subscription_cancel(
                subscription=form.subscription,
                reason=form.cleaned_data["reason"],
                reason_detail=form.cleaned_data["reason_detail"],
                actor_user=request.user,
                effective_at=form.effective_at,
                requester=Requester(form.cleaned_data["name"], form.cleaned_data["email"]),
                now=now,
            )
        except CancellationError as error:
            form.add_error(None, str(error))
        else:
            # Submitted again (already done): the same acknowledgement.
            return redirect("subscriptions:resiliation_receipt", subscription.pk)
    return render(request, "subscriptions/resiliation.html", {
        "form": form,
        **resiliation_recap(subscription=form.subscription, now=now, chosen=form.quote),
    })


def _posted_subscription(request):
    """A second submission of the recap, once the first one cancelled: the contract it
    named (the form checks the reference)."""
    return request.user.subscriptions.select_related("plan", "customer").order_by(
        "-started_at").first()


@login_required
def resiliation_receipt(request, pk):
    """The acknowledgement of the résiliation (D215-3), as its email says it."""
    subscription = get_object_or_404(
        Subscription.objects.select_related("plan", "customer"), pk=pk, customer=request.user)
    acknowledgement = cancellation_acknowledgement(subscription=subscription)
    if acknowledgement is None:
        return redirect("subscriptions:billing")
    return render(request, "subscriptions/resiliation_receipt.html", {
        "subscription": subscription,
        "acknowledgement": acknowledgement,
        "can_reactivate": reactivate_refusal(subscription, now=timezone.now()) is None,
    })
