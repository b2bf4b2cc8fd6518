"""Reads for the staff reporting page (issue 5, scope 8): active subscriptions by plan, those
whose cancellation takes effect at the end of their period, MRR net of the month's refunds,
cancellations by reason and dunning outcomes over a recent window."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction

from django.db.models import Count, Q, Sum

from billing.amounts import round_half_up
from billing.models import CreditNote
from subscriptions.models import (
    CancelReason,
    Channel,
    Interval,
    Plan,
    Status,
    Subscription,
    SubscriptionEvent,
)
from subscriptions.selectors import RENEWING, business_tz

WINDOWS_DAYS = (30, 90)


@dataclass(frozen=True)
class PlanLine:
    plan: Plan
    active: int
    mrr_cents: int


@dataclass(frozen=True)
class PlanCount:
    plan: Plan
    count: int


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
class Mrr:
    """Per currency, in cents net of VAT."""

    gross_cents: dict[str, int]
    month_refunds_cents: dict[str, int]
    net_cents: dict[str, int]


@dataclass(frozen=True)
class StaffReport:
    plans: list[PlanLine]
    active_total: int
    mrr: Mrr
    ending: list[PlanCount] = field(default_factory=list)
    ending_total: int = 0
    cancellations: dict[int, list[ReasonLine]] = field(default_factory=dict)
    dunning: list[DunningOutcome] = field(default_factory=list)


def _monthly_fraction(plan: Plan, count: int) -> Fraction:
    """Monthly recurring revenue of `count` subscriptions of a plan, net of VAT, unrounded."""
    months = 12 if plan.interval == Interval.YEAR else 1
    return Fraction(plan.price_cents * count, months)


def _count_by_plan(subscriptions) -> list[PlanCount]:
    counts = dict(subscriptions.order_by().values_list("plan").annotate(count=Count("pk")))
    plans = Plan.objects.filter(pk__in=counts).order_by("interval", "tier", "price_cents", "code")
    return [PlanCount(plan, counts[plan.pk]) for plan in plans]


def active_subscriptions_by_plan() -> list[PlanLine]:
    """Subscriptions that will be charged again here (RENEWING): auto-renewal on, or a
    commitment still running."""
    return [PlanLine(line.plan, line.count, round_half_up(_monthly_fraction(line.plan,
                                                                            line.count)))
            for line in _count_by_plan(Subscription.objects.filter(RENEWING))]


def ending_subscriptions_by_plan(*, now) -> list[PlanCount]:
    """« Résiliation programmée »: still active, auto-renewal off, ending at the end of the
    period; they will not be charged again."""
    ending = Q(channel=Channel.DIRECT, status=Status.ACTIVE, auto_renew=False, ends_at__gt=now)
    return _count_by_plan(Subscription.objects.filter(ending).exclude(RENEWING))


def month_start(now) -> datetime:
    """Midnight on the first day of `now`'s calendar month, in the business time zone."""
    local = now.astimezone(business_tz())
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_refunds_cents(*, now) -> dict[str, int]:
    """Net (HT) amount of the refunds' credit notes issued this calendar month, up to `now`,
    per currency (a credit note cancelling an invoice never paid gives no money back)."""
    rows = (
        CreditNote.objects.filter(issued_at__gte=month_start(now), issued_at__lte=now,
                                  refund__isnull=False)
        .order_by().values_list("refund__currency").annotate(net=Sum("net_cents"))
    )
    return dict(rows)


def mrr(*, lines: list[PlanLine], now) -> Mrr:
    """Gross MRR: monthly plans' price plus annual plans' price / 12 for every subscription
    that renews, rounded once per currency (so not always the sum of the rounded rows); net
    MRR: minus the month's refunds."""
    totals: dict[str, Fraction] = {}
    for line in lines:
        currency = line.plan.currency
        totals[currency] = totals.get(currency, Fraction(0)) + _monthly_fraction(line.plan,
                                                                                 line.active)
    gross = {currency: round_half_up(total) for currency, total in totals.items()}
    refunds = month_refunds_cents(now=now)
    currencies = sorted(gross.keys() | refunds.keys())
    return Mrr(
        gross_cents={c: gross.get(c, 0) for c in currencies},
        month_refunds_cents={c: refunds.get(c, 0) for c in currencies},
        net_cents={c: gross.get(c, 0) - refunds.get(c, 0) for c in currencies},
    )


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
        entered=Count("pk", filter=Q(kind__in=[SubscriptionEvent.Kind.PAYMENT_FAILED,
                                               SubscriptionEvent.Kind.AUTHENTICATION_REQUIRED],
                                     data__attempt=1)),
        recovered=Count("pk", filter=Q(kind=SubscriptionEvent.Kind.REACTIVATED)),
        suspended=Count("pk", filter=Q(kind=SubscriptionEvent.Kind.SUSPENDED)),
    )
    return DunningOutcome(days=days, **counts)


def staff_report(*, now) -> StaffReport:
    plans = active_subscriptions_by_plan()
    ending = ending_subscriptions_by_plan(now=now)
    return StaffReport(
        plans=plans,
        active_total=sum(line.active for line in plans),
        mrr=mrr(lines=plans, now=now),
        ending=ending,
        ending_total=sum(line.count for line in ending),
        cancellations={days: cancellations_by_reason(now=now, days=days)
                       for days in WINDOWS_DAYS},
        dunning=[dunning_outcomes(now=now, days=days) for days in WINDOWS_DAYS],
    )
