from .cancel import (
    CancellationError,
    Requester,
    subscription_auto_renew_reactivate,
    subscription_cancel,
)
from .subscribe import SubscribeError, subscription_restart, subscription_subscribe
from .withdraw import WithdrawalError, subscription_withdraw

__all__ = [
    "CancellationError",
    "Requester",
    "SubscribeError",
    "WithdrawalError",
    "subscription_auto_renew_reactivate",
    "subscription_cancel",
    "subscription_restart",
    "subscription_subscribe",
    "subscription_withdraw",
]
