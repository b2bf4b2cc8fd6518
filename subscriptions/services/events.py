from subscriptions.models import Actor, SubscriptionEvent


def subscription_event_record(
    *, subscription, kind, at, actor=Actor.SYSTEM, actor_user=None, amount_cents=None, data=None
) -> SubscriptionEvent:
    return SubscriptionEvent.objects.create(
        subscription=subscription,
        kind=kind,
        actor=actor,
        actor_user=actor_user,
        at=at,
        amount_cents=amount_cents,
        data=data or {},
    )
