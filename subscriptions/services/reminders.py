"""Reminder emails (DESIGN §10): pre-charge notice, annual renewal notice (Loi Chatel),
pre-expiry notice and card-expiry reminder.

Each reminder is defined once, here: the subscriptions it is due for at ``now`` (a queryset
filtered in SQL on its date window and on its email not being queued yet, which the beat job
scans) and the service that handles one of them. The service re-checks through that same
queryset, builds the context and queues the email under its occasion key. The key is
computed by the queryset itself, so the scan and the service cannot disagree on it; it is
stable per occasion, so running the jobs again, the same day or the following ones, queues
nothing new.

"N days before" counts calendar days in the business time zone: a reminder due 3 days
before a renewal on the 10th goes out from midnight on the 7th, whatever the hour of the
scan and of the renewal.
"""

from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db.models import (
    Case,
    CharField,
    DateTimeField,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast, Concat, ExtractMonth, ExtractYear

from billing.models import PaymentMethod
from billing.selectors import default_card, plan_price
from notifications.models import OutboxEmail
from notifications.services import email_enqueue
from subscriptions.email_links import cancel_link_url
from subscriptions.models import Channel, Interval, Status, Subscription
from subscriptions.periods import add_days, add_months
from subscriptions.policy import chatel_notice_window, commitment_end
from subscriptions.selectors import (
    CHATEL_NOTICE,
    RENEWING,
    business_tz,
    cancellation_refunded,
)

PRE_CHARGE = "pre_charge_notice"
ANNUAL_RENEWAL = CHATEL_NOTICE
PRE_EXPIRY = "pre_expiry_notice"
CARD_EXPIRY = "card_expiry_notice"


def account_url() -> str:
    return settings.SITE_URL + "/compte/abonnement/"


def resiliation_url() -> str:
    """The footer's "Résilier mon contrat" (signing in first if need be)."""
    return settings.SITE_URL + "/compte/resilier/"


def cancel_url(subscription) -> str:
    """Where a reminder sends a customer who does not want the renewal: the signed link of
    §9, scoped to the subscription and its coming renewal, usable without logging in."""
    return cancel_link_url(subscription=subscription)


def card_url() -> str:
    return settings.SITE_URL + "/compte/carte/"


def renew_url() -> str:
    return settings.SITE_URL + "/offres/"


# Pre-charge notice


def pre_charge_notices_due(*, now):
    window = Q()
    for interval, days in settings.PRE_CHARGE_NOTICE_DAYS.items():
        window |= Q(plan__interval=interval, current_period_end__lt=_days_ahead(now, days))
    return _unqueued(
        _reminded().filter(RENEWING, window, current_period_end__gt=now),
        kind=PRE_CHARGE,
        occasion=_occasion("subscription-", F("pk"), "-renewal-", _UtcStamp("current_period_end")),
    )


def pre_charge_notice_send(*, subscription_id: int, now) -> OutboxEmail | None:
    """N days before a renewal (PRE_CHARGE_NOTICE_DAYS, by the plan's interval): the date,
    the amount that will be charged, the card, how to cancel."""
    subscription = pre_charge_notices_due(now=now).filter(pk=subscription_id).first()
    if subscription is None:
        return None
    return _enqueue(PRE_CHARGE, subscription, now=now, context=_renewal_context(subscription))


# Annual renewal notice (Loi Chatel)


def annual_renewal_notices_due(*, now):
    """The Loi Chatel notice, ANNUAL_RENEWAL_NOTICE_DAYS before a tacit renewal: an annual
    plan's renewal, or the end of a monthly plan's commitment, after which the contract goes
    on tacitly from month to month. The service checks the legal window exactly; the SQL
    bounds here are a little wider (1 month is 28 to 31 days, 3 months 89 to 92, give or take
    a daylight-saving hour). Once per renewal date (per commitment)."""
    horizon = _days_ahead(now, settings.ANNUAL_RENEWAL_NOTICE_DAYS)
    annual = Q(plan__interval=Interval.YEAR, current_period_end__lt=horizon,
               current_period_end__gt=now + timedelta(days=27),
               current_period_end__lte=now + timedelta(days=93))
    commitment = Q(plan__interval=Interval.MONTH, plan__commitment_months__gt=0,
                   commitment_ends_at__lt=horizon,
                   commitment_ends_at__gt=now + timedelta(days=27),
                   commitment_ends_at__lte=now + timedelta(days=93))
    return _unqueued(
        _reminded()
        .filter(status=Status.ACTIVE, auto_renew=True)
        .annotate(commitment_ends_at=_CommitmentEnd("started_at", "plan__commitment_months"))
        .filter(annual | commitment),
        kind=ANNUAL_RENEWAL,
        occasion=Case(
            When(plan__interval=Interval.YEAR,
                 then=_occasion("subscription-", F("pk"), "-renewal-",
                                _UtcStamp("current_period_end"))),
            default=_occasion("subscription-", F("pk"), "-commitment-end"),
            output_field=CharField(),
        ),
    )


def chatel_window_open(*, renews_at, now) -> bool:
    """Between 3 months and 1 month before the renewal date, counted on the local calendar
    from that date (a notice later than a month before it does not meet the law)."""
    start, end = chatel_notice_window(renews_at=renews_at, tz=business_tz())
    # Compared in UTC: two date-times sharing a tzinfo compare by wall clock, ignoring fold.
    return start.astimezone(UTC) <= now.astimezone(UTC) < end.astimezone(UTC)


def _chatel_renewal_date(subscription):
    """The date of the tacit renewal the notice is about, and whether it is the end of a
    monthly commitment."""
    if subscription.plan.interval == Interval.YEAR:
        return subscription.current_period_end, False
    plan = subscription.plan
    return commitment_end(plan=plan, started_at=subscription.started_at,
                          billing_anchor=subscription.billing_anchor, tz=business_tz()), True


def annual_renewal_notice_send(*, subscription_id: int, now) -> OutboxEmail | None:
    """The renewal date, the amount, the right not to renew and the last date to refuse it
    (in a box), with the cancel link. The outbox row records the send
    (selectors.chatel_notice_sent)."""
    subscription = annual_renewal_notices_due(now=now).filter(pk=subscription_id).first()
    if subscription is None:
        return None
    renews_at, commitment = _chatel_renewal_date(subscription)
    horizon = _days_ahead(now, settings.ANNUAL_RENEWAL_NOTICE_DAYS)
    if renews_at.astimezone(UTC) >= horizon.astimezone(UTC) or not chatel_window_open(
        renews_at=renews_at, now=now
    ):
        return None
    context = _renewal_context(subscription)
    context.update(renews_at=renews_at, commitment=commitment,
                   commitment_months=subscription.plan.commitment_months)
    if commitment:
        # The signed link cancels the coming monthly renewal only: the footer's door instead.
        context["cancel_url"] = resiliation_url()
    return _enqueue(ANNUAL_RENEWAL, subscription, now=now, context=context)


# Pre-expiry notice


def pre_expiry_notices_due(*, now):
    """Auto-renewal off, not ended, and the nearest notice whose day has come is annotated as
    ``notice_days``: the 7-day notice goes out from day J-7 until day J-1, when the 1-day one
    takes over. A notice goes only to a customer who had cancelled at least that long before
    the end: one who cancels 3 days before it gets the 1-day notice only, never a late 7-day
    one."""
    offsets = sorted(settings.PRE_EXPIRY_NOTICE_DAYS)
    windows, since = [], Q(ends_at__gt=now)
    for days in offsets:
        until = _days_ahead(now, days)
        cancelled_in_time = Q(cancel_requested_at__isnull=True) | Q(
            cancel_requested_at__lte=F("ends_at") - timedelta(days=days)
        )
        windows.append(
            When(since & cancelled_in_time & Q(ends_at__lt=until), then=Value(days))
        )
        since = Q(ends_at__gte=until)
    return _unqueued(
        _reminded()
        .exclude(status=Status.ENDED)
        .filter(auto_renew=False, ends_at__gt=now, ends_at__lt=_days_ahead(now, offsets[-1]))
        .annotate(notice_days=Case(*windows, output_field=IntegerField()))
        .filter(notice_days__isnull=False),
        kind=PRE_EXPIRY,
        occasion=_occasion("subscription-", F("pk"), "-expiry-", _UtcStamp("ends_at"), "-",
                           F("notice_days"), "d"),
    )


def pre_expiry_notice_send(*, subscription_id: int, now) -> OutboxEmail | None:
    """7 days and 1 day before ``ends_at`` (PRE_EXPIRY_NOTICE_DAYS): the end date and the
    "Renouveler" link."""
    subscription = pre_expiry_notices_due(now=now).filter(pk=subscription_id).first()
    if subscription is None:
        return None
    return _enqueue(PRE_EXPIRY, subscription, now=now, context={
        "plan": subscription.plan,
        "ends_at": subscription.ends_at,
        "days_left": subscription.notice_days,
        "renew_url": renew_url(),
        "account_url": account_url(),
        "can_reactivate": not cancellation_refunded(subscription=subscription),
    })


# Card-expiry reminder


def card_expiry_notices_due(*, now):
    """The default card expires (at the end of its expiry month, local time) before the
    next charge of a renewing subscription, and that charge is CARD_EXPIRY_NOTICE_DAYS away
    or less. Once per (card, renewal date): a new card, or the next renewal, is a new
    occasion."""
    tz = business_tz()
    card = PaymentMethod.objects.filter(customer=OuterRef("customer"), is_default=True)
    return _unqueued(
        _reminded()
        .filter(
            RENEWING,
            current_period_end__gt=now,
            current_period_end__lt=_days_ahead(now, settings.CARD_EXPIRY_NOTICE_DAYS),
        )
        .annotate(
            card_id=Subquery(card.values("pk")[:1]),
            card_last_month=Subquery(
                card.annotate(month=F("exp_year") * 12 + F("exp_month")).values("month")[:1]
            ),
            renewal_month=ExtractYear("current_period_end", tzinfo=tz) * 12
            + ExtractMonth("current_period_end", tzinfo=tz),
        )
        .filter(card_last_month__lt=F("renewal_month")),
        kind=CARD_EXPIRY,
        occasion=_occasion("subscription-", F("pk"), "-card-", F("card_id"), "-renewal-",
                           _UtcStamp("current_period_end")),
    )


def card_expiry_notice_send(*, subscription_id: int, now) -> OutboxEmail | None:
    """The card, when it expires, the date and amount of the charge, the link to update."""
    subscription = card_expiry_notices_due(now=now).filter(pk=subscription_id).first()
    if subscription is None:
        return None
    card = PaymentMethod.objects.get(pk=subscription.card_id)
    context = _renewal_context(subscription, card=card)
    context["card_expiry_month"] = date(card.exp_year, card.exp_month, 1)
    context["card_expired"] = _card_expires_at(card).astimezone(UTC) <= now.astimezone(UTC)
    return _enqueue(CARD_EXPIRY, subscription, now=now, context=context)


# Shared


def _reminded():
    """Reminders are for subscriptions bought here: the stores and resellers send their own."""
    return Subscription.objects.filter(channel=Channel.DIRECT).select_related(
        "plan", "pending_plan", "customer"
    )


def _days_ahead(now, days: int):
    """The first instant after the local day ``days`` days from today: an instant before it
    is at most ``days`` calendar days away."""
    tz = business_tz()
    today = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return add_days(today, days + 1, tz=tz)


class _UtcStamp(Func):
    """``YYYYMMDDTHHMMZ`` of a date-time column in UTC, in SQL (PostgreSQL, and SQLite for the
    embedded demo, which stores date-times as UTC text)."""

    output_field = CharField()

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"to_char({sql} AT TIME ZONE 'UTC', %s)", (*params, 'YYYYMMDD"T"HH24MI"Z"')

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"strftime(%s, {sql})", ("%Y%m%dT%H%MZ", *params)


class _CommitmentEnd(Func):
    """``started_at`` plus the plan's ``commitment_months`` on the business time zone's
    calendar, in SQL: exact on PostgreSQL (its month arithmetic clamps the day, as
    ``add_months`` does); approximate on SQLite (the embedded demo), where the service's own
    check decides."""

    output_field = DateTimeField()

    def as_sql(self, compiler, connection, **extra_context):
        started, started_params = compiler.compile(self.source_expressions[0])
        months, months_params = compiler.compile(self.source_expressions[1])
        tz = settings.BUSINESS_TIME_ZONE
        return (f"(({started} AT TIME ZONE %s) + make_interval(months => {months}::integer))"
                f" AT TIME ZONE %s", (*started_params, tz, *months_params, tz))

    def as_sqlite(self, compiler, connection, **extra_context):
        started, started_params = compiler.compile(self.source_expressions[0])
        months, months_params = compiler.compile(self.source_expressions[1])
        return (f"datetime({started}, '+' || {months} || ' months')",
                (*started_params, *months_params))


def _occasion(*parts):
    """The occasion, in SQL, from literal text and expressions (a column as ``F``), e.g.
    ``subscription-42-renewal-20260410T0730Z``."""
    return Concat(
        *[
            Value(part) if isinstance(part, str)
            else Cast(part, CharField()) if isinstance(part, F) else part
            for part in parts
        ],
        output_field=CharField(),
    )


def _unqueued(queryset, *, kind: str, occasion):
    """Annotate the occasion and keep the rows whose email is not queued yet."""
    return queryset.annotate(
        occasion=occasion,
        occasion_key=Concat(Value(f"{kind}:"), F("occasion"), output_field=CharField()),
    ).filter(~Exists(OutboxEmail.objects.filter(occasion_key=OuterRef("occasion_key"))))


def _card_expires_at(card):
    """A card is valid until the end of its expiry month."""
    tz = business_tz()
    return add_months(datetime(card.exp_year, card.exp_month, 1, tzinfo=tz), 1, tz=tz)


def _renewal_context(subscription, *, card=None) -> dict:
    plan = subscription.pending_plan or subscription.plan
    customer = subscription.customer
    return {
        "plan": plan,
        "current_plan": subscription.plan,
        "renews_at": subscription.current_period_end,
        "amount": plan_price(plan=plan, customer=customer, on=subscription.current_period_end),
        "currency": plan.currency,
        "card": card or default_card(customer=customer),
        "cancel_url": cancel_url(subscription),
        "account_url": account_url(),
        "card_url": card_url(),
    }


def _enqueue(kind: str, subscription, *, now, context: dict) -> OutboxEmail:
    return email_enqueue(
        kind=kind,
        occasion=subscription.occasion,
        customer=subscription.customer,
        subscription=subscription,
        context=context,
        now=now,
    )
