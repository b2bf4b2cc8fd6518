from django.utils import timezone

from subscriptions.pages import withdrawable_subscriptions


def withdrawal(request):
    """``withdrawal_link``: whether the footer shows "Renoncer au contrat ici" (DESIGN §8).
    To a visitor, always (signing in leads on to the statement); to a logged-in customer,
    while one of their contracts may be withdrawn. Asked (one query) only when a page's
    footer reads it."""

    def shown():
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return True
        return bool(withdrawable_subscriptions(customer=user, now=timezone.now()))

    return {"withdrawal_link": shown}
