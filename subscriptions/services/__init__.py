from .cancel import (
    CancellationError,
    subscription_auto_renew_reactivate,
    subscription_cancel,
)
from .subscribe import SubscribeError, subscription_restart, subscription_subscribe

__all__ = [
    "CancellationError",
    "SubscribeError",
    "subscription_auto_renew_reactivate",
    "subscription_cancel",
    "subscription_restart",
    "subscription_subscribe",
]
