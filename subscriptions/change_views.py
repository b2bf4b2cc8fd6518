"""« Changer de formule » (DESIGN §7, §9): the options, a confirmation page per plan, and the
POSTs that confirm, schedule or withdraw a change. Every amount shown is a quote of
``subscriptions.services.change_plan``, the one the services charge."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from billing.selectors import default_card, plan_price
from formats.dates import long_date
from subscriptions.confirm_views import challenge_redirect
from subscriptions.models import Interval, Plan, Subscription
from subscriptions.services.change_plan import (
    AmountChanged,
    PlanChangeError,
    PlanChangeResult,
    plan_change_blocker,
    plan_change_options,
    plan_change_quote,
    subscription_schedule_downgrade,
    subscription_switch_to_annual,
    subscription_upgrade,
    subscription_withdraw_plan_change,
)
from subscriptions.services.payments import ChallengeRequired


def _own_subscription(request, pk):
    return get_object_or_404(
        Subscription.objects.select_related("plan", "pending_plan", "customer"),
        pk=pk, customer=request.user,
    )


def _day(instant):
    return long_date(instant)


@require_http_methods(["GET"])
@login_required
def change_options(request, pk):
    subscription = _own_subscription(request, pk)
    now = timezone.now()
    return render(request, "subscriptions/change_options.html", {
        "subscription": subscription,
        "current_price": plan_price(plan=subscription.plan, customer=request.user),
        "blocker": plan_change_blocker(subscription, now=now),
        "options": plan_change_options(subscription=subscription, now=now),
    })


@require_http_methods(["GET", "POST"])
@login_required
def change_confirm(request, pk, code):
    """GET: what moving to this plan does and the exact amount due now. POST: confirm it."""
    subscription = _own_subscription(request, pk)
    plan = get_object_or_404(Plan, code=code)
    if request.method == "POST":
        return _confirm_now(request, subscription, plan)
    quote = plan_change_quote(subscription=subscription, plan=plan, now=timezone.now())
    if not quote.available:
        messages.error(request, quote.reason)
        return redirect("subscriptions:change_options", subscription.pk)
    return _confirm_page(request, subscription, quote)


def _confirm_page(request, subscription, quote):
    return render(request, "subscriptions/change_confirm.html", {
        "subscription": subscription,
        "quote": quote,
        "card": default_card(customer=request.user),
    })


def _confirm_now(request, subscription, plan):
    try:
        expected = int(request.POST.get("expected_amount_cents", ""))
    except ValueError:
        messages.error(request, _("Confirmez le montant affiché pour changer de formule."))
        return redirect("subscriptions:change_confirm", subscription.pk, plan.code)
    switching = subscription.plan.interval == Interval.MONTH and plan.interval == Interval.YEAR
    change = subscription_switch_to_annual if switching else subscription_upgrade
    try:
        result = change(subscription=subscription, plan=plan, expected_amount_cents=expected,
                        actor_user=request.user)
    except AmountChanged as changed:
        messages.warning(request, str(changed))
        return _confirm_page(request, subscription, changed.quote)
    except PlanChangeError as error:
        messages.error(request, str(error))
        return redirect("subscriptions:change_options", subscription.pk)
    except ChallengeRequired as required:
        return challenge_redirect(required.charge)
    if result.outcome == PlanChangeResult.PENDING:
        messages.warning(request, _("Nous n'avons pas pu confirmer votre paiement. Ne le "
                                    "renouvelez pas : nous vérifions auprès de notre "
                                    "prestataire et votre formule changera dès qu'il sera "
                                    "confirmé."))
    elif result.outcome == PlanChangeResult.ALREADY_DONE:
        messages.info(request, _("Votre abonnement est déjà passé à %(plan)s.")
                      % {"plan": plan})
    else:
        messages.success(request, _("C'est fait : votre abonnement est passé à %(plan)s. Un "
                                    "e-mail de confirmation vous a été envoyé.")
                         % {"plan": plan})
    return redirect("subscriptions:billing")


@require_POST
@login_required
def change_schedule(request, pk, code):
    subscription = _own_subscription(request, pk)
    plan = get_object_or_404(Plan, code=code)
    try:
        result = subscription_schedule_downgrade(subscription=subscription, plan=plan,
                                                 actor_user=request.user)
    except PlanChangeError as error:
        messages.error(request, str(error))
        return redirect("subscriptions:change_options", subscription.pk)
    messages.success(request, _("Changement programmé : votre abonnement passera à %(plan)s le "
                                "%(date)s. Vous pouvez l'annuler d'ici là.")
                     % {"plan": plan, "date": _day(result.subscription.current_period_end)})
    return redirect("subscriptions:billing")


@require_POST
@login_required
def change_withdraw(request, pk):
    """« Annuler le changement »: the scheduled plan change is dropped."""
    subscription = _own_subscription(request, pk)
    try:
        result = subscription_withdraw_plan_change(subscription=subscription,
                                                   actor_user=request.user)
    except PlanChangeError as error:
        messages.error(request, str(error))
    else:
        if result.outcome == PlanChangeResult.WITHDRAWN:
            messages.success(request, _("Le changement de formule prévu est annulé : votre "
                                        "abonnement sera renouvelé avec la formule %(plan)s.")
                             % {"plan": result.subscription.plan})
    return redirect("subscriptions:billing")
