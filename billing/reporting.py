"""Reads for the staff reporting page (issue 5, scope 8): active subscriptions by plan, MRR,
cancellations by reason and dunning outcomes over a recent window."""

from dataclasses import dataclass, field
from datetime import timedelta
from fractions import Fraction

from django.db.models import Count, Q

from billing.amounts import round_half_up
from subscriptions.models import CancelReason, Interval, Plan, Status, SubscriptionEvent

WINDOWS_DAYS = (30, 90)


@dataclass(frozen=True)
class PlanLine:
    plan: Plan
    active: int
    mrr_cents: int


@dataclass(frozen=True)
class ReasonLine:
    reason: str
    label: str
    count: int


@dataclass(frozen=True)
class DunningOutcome:
    days: int
    entered: int
    recovered: int
    suspended: int


@dataclass(frozen=True)
class StaffReport:
    plans: list[PlanLine]
    active_total: int
    mrr_cents: dict[str, int]
    cancellations: dict[int, list[ReasonLine]] = field(default_factory=dict)
    dunning: list[DunningOutcome] = field(default_factory=list)


def _monthly_fraction(plan: Plan, count: int) -> Fraction:
    """Monthly recurring revenue of `count` subscriptions of a plan, net of VAT, unrounded."""
    months = 12 if plan.interval == Interval.YEAR else 1
    return Fraction(plan.price_cents * count, months)


def active_subscriptions_by_plan() -> list[PlanLine]:
    plans = (
        Plan.objects.annotate(
            active=Count("subscriptions", filter=Q(subscriptions__status=Status.ACTIVE))
        )
        .filter(active__gt=0)
        .order_by("interval", "tier", "price_cents", "code")
    )
    return [PlanLine(plan, plan.active, round_half_up(_monthly_fraction(plan, plan.active)))
            for plan in plans]


def mrr_cents(lines: list[PlanLine] | None = None) -> dict[str, int]:
    """MRR per currency, in cents net of VAT: monthly plans' price plus annual plans' price / 12
    for every active subscription, rounded once (so not always the sum of the rounded rows)."""
    lines = active_subscriptions_by_plan() if lines is None else lines
    totals: dict[str, Fraction] = {}
    for line in lines:
        currency = line.plan.currency
        totals[currency] = totals.get(currency, Fraction(0)) + _monthly_fraction(line.plan,
                                                                                 line.active)
    return {currency: round_half_up(total) for currency, total in sorted(totals.items())}


def cancellations_by_reason(*, now, days: int) -> list[ReasonLine]:
    """Cancellations (auto-renewal turned off, by anyone) recorded in the last `days` days,
    counted by the reason given; most frequent first."""
    rows = (
        SubscriptionEvent.objects.filter(
            kind=SubscriptionEvent.Kind.CANCELLED, at__gt=now - timedelta(days=days), at__lte=now
        )
        .values_list("data__reason", flat=True)
    )
    counts: dict[str, int] = {}
    for reason in rows:
        counts[reason or ""] = counts.get(reason or "", 0) + 1
    labels = dict(CancelReason.choices)
    lines = [ReasonLine(reason, str(labels.get(reason, reason)) if reason else "", count)
             for reason, count in counts.items()]
    return sorted(lines, key=lambda line: (-line.count, line.reason))


def dunning_outcomes(*, now, days: int) -> DunningOutcome:
    """Over the last `days` days: renewals that failed a first time (entered dunning), overdue
    subscriptions paid again (recovered) and subscriptions suspended after the last retry."""
    events = SubscriptionEvent.objects.filter(at__gt=now - timedelta(days=days), at__lte=now)
    counts = events.aggregate(
        entered=Count("pk", filter=Q(kind=SubscriptionEvent.Kind.PAYMENT_FAILED,
                                     data__attempt=1)),
        recovered=Count("pk", filter=Q(kind=SubscriptionEvent.Kind.REACTIVATED)),
        suspended=Count("pk", filter=Q(kind=SubscriptionEvent.Kind.SUSPENDED)),
    )
    return DunningOutcome(days=days, **counts)


def staff_report(*, now) -> StaffReport:
    plans = active_subscriptions_by_plan()
    return StaffReport(
        plans=plans,
        active_total=sum(line.active for line in plans),
        mrr_cents=mrr_cents(plans),
        cancellations={days: cancellations_by_reason(now=now, days=days)
                       for days in WINDOWS_DAYS},
        dunning=[dunning_outcomes(now=now, days=days) for days in WINDOWS_DAYS],
    )
