from .cancel import (
    CancellationError,
    Requester,
    subscription_auto_renew_reactivate,
    subscription_cancel,
)
from .subscribe import SubscribeError, subscription_restart, subscription_subscribe

__all__ = [
    "CancellationError",
    "Requester",
    "SubscribeError",
    "subscription_auto_renew_reactivate",
    "subscription_cancel",
    "subscription_restart",
    "subscription_subscribe",
]
