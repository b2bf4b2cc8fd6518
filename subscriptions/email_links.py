"""The cancellation link of the renewal emails (DESIGN §9, last paragraph).

The pre-charge and Loi Chatel notices carry ``/resilier/<token>/``, which works without
logging in. The token is signed with SECRET_KEY under a salt of its own, so no other signed
value of the project verifies as one, and it carries:

- the subscription: the URL has no other id, so a token acts on its own subscription only;
- the renewal it was issued for (``current_period_end`` then, to the microsecond);
- how many cancellations the subscription had recorded then.

It is not encrypted: those three numbers are readable, never forgeable.

A link cancels that one renewal, once. It is refused, changing nothing, when it is:

- expired: ``now`` is at or after that renewal. Checked against the ``now`` passed in, not the
  signer's clock: the token has no timestamp and no ``max_age``;
- renewed: the period end has moved (renewed, or the period changed with the plan);
- used: a cancellation was recorded since it was issued. Counting them, rather than comparing
  dates, keeps it free of clocks and also refuses a cancel → reactivate → click again;
- already cancelled (auto-renewal off), for another channel, or for an ended subscription.

Opening the link only reads (mail scanners open links); ``cancel_link_use`` re-checks under the
row lock and calls the dialog's service, which sends the same confirmation email.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from subscriptions import rules
from subscriptions.models import Actor, Subscription, SubscriptionEvent
from subscriptions.policy import CancellationTerms
from subscriptions.rules import cancel_refusal
from subscriptions.selectors import lock_subscription
from subscriptions.services.cancel import subscription_cancel

SALT = "subscriptions.email-cancel"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class Refusal(StrEnum):
    INVALID = "invalid"
    USED = "used"
    OTHER_CHANNEL = "other_channel"
    ENDED = "ended"
    RENEWED = "renewed"
    EXPIRED = "expired"
    ALREADY_CANCELLED = "already_cancelled"
    REFUSED = "refused"  # by the cancellation service itself (CancellationError)


class CancelLinkRefused(Exception):
    def __init__(self, reason: Refusal, *, subscription=None, claims=None):
        super().__init__(reason)
        self.reason = reason
        self.subscription = subscription
        self.claims = claims


@dataclass(frozen=True)
class CancelLinkClaims:
    subscription_id: int
    renews_at: datetime
    cancellations: int


def _cancellations(subscription) -> int:
    return subscription.events.filter(kind=SubscriptionEvent.Kind.CANCELLED).count()


def cancel_link_token(*, subscription) -> str:
    payload = {
        "s": subscription.pk,
        "r": (subscription.current_period_end - _EPOCH) // _MICROSECOND,
        "n": _cancellations(subscription),
    }
    return signing.Signer(salt=SALT).sign_object(payload, compress=True)


def cancel_link_url(*, subscription) -> str:
    token = cancel_link_token(subscription=subscription)
    return settings.SITE_URL + reverse("subscriptions:email_cancel", args=[token])


def cancel_link_claims(token: str) -> CancelLinkClaims:
    try:
        payload = signing.Signer(salt=SALT).unsign_object(token)
        return CancelLinkClaims(
            subscription_id=int(payload["s"]),
            renews_at=_EPOCH + int(payload["r"]) * _MICROSECOND,
            cancellations=int(payload["n"]),
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError) as error:
        raise CancelLinkRefused(Refusal.INVALID) from error


def _refusal(subscription, claims: CancelLinkClaims, now) -> Refusal | None:
    """The link's own reasons, around the cancellation predicate's (same names)."""
    if _cancellations(subscription) > claims.cancellations:
        return Refusal.USED
    cancel = cancel_refusal(subscription, now=now)
    if cancel in (rules.Refusal.OTHER_CHANNEL, rules.Refusal.ENDED):
        return Refusal(cancel.value)
    if subscription.current_period_end != claims.renews_at:
        return Refusal.RENEWED
    if now >= claims.renews_at:
        return Refusal.EXPIRED
    return Refusal(cancel.value) if cancel is not None else None


def cancel_link_subscription(*, token: str, now, lock: bool = False) -> Subscription:
    """The subscription the link may cancel at ``now``, or ``CancelLinkRefused`` saying why."""
    claims = cancel_link_claims(token)
    if not Subscription.objects.filter(pk=claims.subscription_id).exists():
        raise CancelLinkRefused(Refusal.ENDED, claims=claims)
    if lock:
        subscription = lock_subscription(claims.subscription_id)
    else:
        subscription = Subscription.objects.select_related("plan", "customer").get(
            pk=claims.subscription_id
        )
    reason = _refusal(subscription, claims, now)
    if reason is not None:
        raise CancelLinkRefused(reason, subscription=subscription, claims=claims)
    return subscription


def cancel_link_use(
    *, token: str, reason: str = "", reason_detail: str = "", now=None
) -> tuple[Subscription, CancellationTerms]:
    """Cancel as the dialog does, by the subscription's customer, if the link still may."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = cancel_link_subscription(token=token, now=now, lock=True)
        subscription, terms = subscription_cancel(
            subscription=subscription,
            reason=reason,
            reason_detail=reason_detail,
            actor=Actor.CUSTOMER,
            actor_user=subscription.customer,
            now=now,
        )
    if terms is None:  # cannot happen under the lock, which the checks above ran under
        raise CancelLinkRefused(Refusal.USED, subscription=subscription)
    return subscription, terms
