"""Plan changes (DESIGN §7): an upgrade or a switch to annual billing now, a downgrade at the
end of the period.

What a change does and costs is decided in one place, ``plan_change_quote``: the pages show
its answer, and the services charge exactly it, computed again under the subscription's lock
at the moment of the confirmation. A confirmation whose amount differs from the one the
customer saw charges nothing (``AmountChanged``): the customer confirms the new amount."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.amounts import (
    TaxedAmount,
    annual_switch_charge_cents,
    prorated_difference_cents,
    tax_from_total,
    unused_credit_cents,
)
from billing.gateways import CardDeclined
from billing.messages import decline_message
from billing.models import Charge, Invoice
from billing.selectors import plan_price
from billing.services import NOT_ATTEMPTED, charge_prepare, invoice_create
from formats.dates import long_date
from subscriptions.models import Actor, Interval, Plan, Subscription
from subscriptions.periods import add_months, period_by_index, whole_seconds
from subscriptions.rules import (
    Refusal,
    plan_change_refusal,
    refusal_message,
    require,
    withdraw_plan_change_refusal,
)
from subscriptions.selectors import business_tz, lock_subscription, sellable_plans
from subscriptions.services import lifecycle
from subscriptions.services.lifecycle import Who
from subscriptions.services.payments import (
    ChallengeRequired,
    charge_challenge_cancel_apply,
    charge_send,
)
from subscriptions.services.settlement import plan_change_apply


class PlanChangeError(Exception):
    """Shown to the customer as is."""


class AmountChanged(PlanChangeError):
    """The amount due at the confirmation is not the one the customer saw (time passed, or
    the prices changed): nothing was charged; ``quote`` is the new one, to confirm."""

    def __init__(self, quote):
        super().__init__(
            _("Le montant à payer a changé depuis l'affichage de la page. Rien n'a été "
              "prélevé : vérifiez le nouveau montant et confirmez à nouveau.")
        )
        self.quote = quote


class ChangeKind:
    UPGRADE = "upgrade"
    SWITCH_TO_ANNUAL = "switch_to_annual"
    DOWNGRADE = "downgrade"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class PlanChangeQuote:
    """What moving to ``plan`` does at ``now``, and what it costs now."""

    plan: Plan
    current_plan: Plan
    kind: str
    price: TaxedAmount  # the new plan's price, from its next charge on
    reason: str = ""  # why not, when unavailable
    effective_at: datetime | None = None
    # Immediate changes: the amount charged now (tax-inclusive, possibly 0), the unused part
    # of the current period deducted from it (switch to annual) and the period the new plan
    # covers from now on, whose end is the next charge date.
    amount: TaxedAmount | None = None
    credit_cents: int = 0
    period_start: datetime | None = None
    period_end: datetime | None = None

    @property
    def immediate(self) -> bool:
        return self.kind in (ChangeKind.UPGRADE, ChangeKind.SWITCH_TO_ANNUAL)

    @property
    def available(self) -> bool:
        return self.kind != ChangeKind.UNAVAILABLE


@dataclass(frozen=True)
class PlanChangeResult:
    subscription: Subscription
    outcome: str  # one of the constants below
    amount_cents: int = 0
    invoice: Invoice | None = None

    CHANGED = "changed"
    ALREADY_DONE = "already_done"  # a second tab, a double click: nothing more was done
    PENDING = "pending"  # the charge's outcome is unknown: reconciled later
    SCHEDULED = "scheduled"
    WITHDRAWN = "withdrawn"


# Quotes (reads only)


def plan_change_options(*, subscription, now) -> list[PlanChangeQuote]:
    """Every other plan on sale, with what moving to it does and costs now."""
    blocker = plan_change_blocker(subscription, now=now)
    return [
        _quote(subscription, plan, now=now, blocker=blocker)
        for plan in sellable_plans().exclude(pk=subscription.plan_id)
    ]


def plan_change_quote(*, subscription, plan, now) -> PlanChangeQuote:
    return _quote(subscription, plan, now=now, blocker=plan_change_blocker(subscription, now=now))


def plan_change_blocker(subscription, *, now) -> str:
    """Why this subscription cannot change plan at all now; "" when it can."""
    refusal = plan_change_refusal(subscription, now=now)
    return refusal_message(refusal, subscription) if refusal else ""


def _kind(subscription, plan, *, now) -> tuple[str, str]:
    current = subscription.plan
    if plan.pk == current.pk:
        return ChangeKind.UNAVAILABLE, _("C'est votre formule actuelle.")
    if not plan.is_active:
        return ChangeKind.UNAVAILABLE, _("Cette formule n'est plus proposée.")
    if plan.commitment_months:
        return ChangeKind.UNAVAILABLE, _("Les formules avec engagement se choisissent à la "
                                         "souscription.")
    commitment_end = add_months(subscription.started_at, current.commitment_months,
                                tz=business_tz())
    if current.commitment_months and now.astimezone(UTC) < commitment_end:
        return ChangeKind.UNAVAILABLE, _(
            "Vous êtes engagé jusqu'au %(date)s : vous pourrez changer de formule à partir de "
            "cette date."
        ) % {"date": long_date(commitment_end)}
    if current.interval == plan.interval:
        if plan.tier > current.tier:
            return ChangeKind.UPGRADE, ""
        if plan.tier < current.tier:
            return ChangeKind.DOWNGRADE, ""
        return ChangeKind.UNAVAILABLE, _("Cette formule est du même niveau que la vôtre.")
    if plan.interval == Interval.YEAR:
        if plan.tier >= current.tier:
            return ChangeKind.SWITCH_TO_ANNUAL, ""
        return ChangeKind.UNAVAILABLE, _("Le passage à l'offre annuelle se fait vers une "
                                         "formule de même niveau ou supérieure.")
    return ChangeKind.DOWNGRADE, ""  # annual → monthly


def _quote(subscription, plan, *, now, blocker) -> PlanChangeQuote:
    customer = subscription.customer
    price = plan_price(plan=plan, customer=customer)
    quote = {"plan": plan, "current_plan": subscription.plan, "price": price}
    if blocker:
        return PlanChangeQuote(kind=ChangeKind.UNAVAILABLE, reason=blocker, **quote)
    kind, reason = _kind(subscription, plan, now=now)
    if kind == ChangeKind.UNAVAILABLE:
        return PlanChangeQuote(kind=kind, reason=reason, **quote)
    if kind == ChangeKind.DOWNGRADE:
        return PlanChangeQuote(kind=kind, effective_at=subscription.current_period_end, **quote)
    # The blocker guarantees current_period_start <= now < current_period_end.
    period_seconds = whole_seconds(subscription.current_period_start,
                                   subscription.current_period_end)
    remaining_seconds = whole_seconds(now, subscription.current_period_end)
    current_total = plan_price(plan=subscription.plan, customer=customer).total_cents
    credit_cents = 0
    if kind == ChangeKind.UPGRADE:
        amount_cents = prorated_difference_cents(
            old_total_cents=current_total, new_total_cents=price.total_cents,
            remaining_seconds=remaining_seconds, period_seconds=period_seconds,
        )
        period_start, period_end = now, subscription.current_period_end
    else:
        credit_cents = unused_credit_cents(total_cents=current_total,
                                           remaining_seconds=remaining_seconds,
                                           period_seconds=period_seconds)
        amount_cents = annual_switch_charge_cents(
            annual_total_cents=price.total_cents, monthly_total_cents=current_total,
            remaining_seconds=remaining_seconds, period_seconds=period_seconds,
        )
        period = period_by_index(anchor=now, interval=plan.interval, index=0, tz=business_tz())
        period_start, period_end = period.start, period.end
    return PlanChangeQuote(
        kind=kind,
        effective_at=now,
        amount=tax_from_total(total_cents=amount_cents, vat_rate=price.vat_rate),
        credit_cents=credit_cents,
        period_start=period_start,
        period_end=period_end,
        **quote,
    )


# Changes now


def subscription_upgrade(
    *, subscription, plan, now=None, expected_amount_cents=None, actor_user=None
) -> PlanChangeResult:
    """A higher tier, same interval: charged the prorated difference now, the new plan at once,
    the period and the billing date unchanged. A refused card changes nothing."""
    return _change_now(subscription=subscription, plan=plan, kind=ChangeKind.UPGRADE, now=now,
                       expected_amount_cents=expected_amount_cents, actor_user=actor_user)


def subscription_switch_to_annual(
    *, subscription, plan, now=None, expected_amount_cents=None, actor_user=None
) -> PlanChangeResult:
    """Monthly → annual, same or higher tier: a new annual period (and billing anchor) from now,
    charged the annual total minus the unused part of the monthly period."""
    return _change_now(subscription=subscription, plan=plan, kind=ChangeKind.SWITCH_TO_ANNUAL,
                       now=now, expected_amount_cents=expected_amount_cents,
                       actor_user=actor_user)


def _change_now(*, subscription, plan, kind, now, expected_amount_cents, actor_user):
    now = now or timezone.now()
    # Choosing again rather than finishing the bank's confirmation of an earlier change: that
    # one is cancelled at the provider first (paid meanwhile, it took effect).
    for waiting in Charge.objects.filter(invoice__subscription=subscription,
                                         invoice__kind=Invoice.Kind.PRORATION,
                                         status=Charge.Status.REQUIRES_ACTION):
        charge_challenge_cancel_apply(charge_id=waiting.pk, now=now)
    with transaction.atomic():
        subscription = lock_subscription(subscription.pk)
        if subscription.plan_id == plan.pk:
            # The same confirmation again (a double click, a second tab): done already.
            return PlanChangeResult(subscription, PlanChangeResult.ALREADY_DONE)
        quote = plan_change_quote(subscription=subscription, plan=plan, now=now)
        if not quote.available:
            raise PlanChangeError(quote.reason)
        if quote.kind != kind:
            raise PlanChangeError(_("Ce changement de formule ne peut pas se faire ainsi : "
                                    "choisissez-le depuis la page « Changer de formule »."))
        if expected_amount_cents is not None and expected_amount_cents != quote.amount.total_cents:
            raise AmountChanged(quote)
        if quote.amount.total_cents == 0:
            plan_change_apply(subscription, plan=plan, period_start=quote.period_start,
                              period_end=quote.period_end, invoice=None, amount_cents=0,
                              who=Who(Actor.CUSTOMER, actor_user), now=now)
            return PlanChangeResult(subscription, PlanChangeResult.CHANGED)
        invoice = invoice_create(
            customer=subscription.customer,
            plan=plan,
            kind=Invoice.Kind.PRORATION,
            subscription=subscription,
            period_start=quote.period_start,
            period_end=quote.period_end,
            description=_invoice_line(quote),
            total_cents=quote.amount.total_cents,
            now=now,
        )
        try:
            charge = charge_prepare(invoice=invoice, now=now, initiated_by=Actor.CUSTOMER)
        except CardDeclined as declined:  # no card: the invoice is rolled back with the rest
            raise PlanChangeError(decline_message(declined.code)) from declined
    charge = charge_send(charge=charge, now=now)
    subscription.refresh_from_db()
    invoice.refresh_from_db()
    if charge.status == Charge.Status.SUCCEEDED:
        return PlanChangeResult(subscription, PlanChangeResult.CHANGED, charge.amount_cents,
                                invoice)
    if charge.status == Charge.Status.REQUIRES_ACTION:
        raise ChallengeRequired(charge)
    if charge.status == Charge.Status.FAILED and charge.failure_code == NOT_ATTEMPTED:
        raise PlanChangeError(_("Votre abonnement vient d'être renouvelé : le changement n'a "
                                "pas été facturé. Merci de le choisir à nouveau."))
    if charge.status == Charge.Status.FAILED:
        raise PlanChangeError(decline_message(charge.failure_code))
    return PlanChangeResult(subscription, PlanChangeResult.PENDING, charge.amount_cents, invoice)


def _invoice_line(quote) -> str:
    names = {"old": quote.current_plan, "new": quote.plan}
    if quote.kind == ChangeKind.SWITCH_TO_ANNUAL:
        return _("Passage à %(new)s, crédit non utilisé de %(old)s déduit") % names
    return _("Prorata %(old)s → %(new)s") % names


# Changes at the end of the period


def subscription_schedule_downgrade(*, subscription, plan, now=None, actor_user=None):
    """A lower tier, or annual → monthly: the renewal at the end of the period invoices and
    applies it (``pending_plan``). Nothing is charged now; it can be withdrawn until then."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = lock_subscription(subscription.pk)
        if subscription.pending_plan_id == plan.pk:
            return PlanChangeResult(subscription, PlanChangeResult.ALREADY_DONE)
        quote = plan_change_quote(subscription=subscription, plan=plan, now=now)
        if not quote.available:
            raise PlanChangeError(quote.reason)
        if quote.kind != ChangeKind.DOWNGRADE:
            raise PlanChangeError(_("Ce changement de formule ne peut pas se faire ainsi : "
                                    "choisissez-le depuis la page « Changer de formule »."))
        lifecycle.schedule_plan(subscription, plan=plan, effective_at=quote.effective_at,
                                who=Who(Actor.CUSTOMER, actor_user), now=now)
    return PlanChangeResult(subscription, PlanChangeResult.SCHEDULED)


def subscription_withdraw_plan_change(*, subscription, now=None, actor_user=None):
    """"Annuler le changement": the scheduled plan is dropped; the subscription renews on its
    current plan. Not once the renewal has started invoicing the scheduled plan."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = lock_subscription(subscription.pk)
        refusal = withdraw_plan_change_refusal(subscription, now=now)
        if refusal == Refusal.OTHER_CHANNEL:
            require(refusal, subscription, PlanChangeError)
        if subscription.pending_plan_id is None:
            return PlanChangeResult(subscription, PlanChangeResult.ALREADY_DONE)
        if refusal is not None:
            raise PlanChangeError(_("Le renouvellement avec la nouvelle formule a déjà "
                                    "commencé : ce changement ne peut plus être annulé."))
        lifecycle.withdraw_plan(subscription, who=Who(Actor.CUSTOMER, actor_user), now=now)
    return PlanChangeResult(subscription, PlanChangeResult.WITHDRAWN)
