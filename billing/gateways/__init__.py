from django.conf import settings
from django.utils.module_loading import import_string

from .base import (
    AuthenticationRequired,
    CardDeclined,
    CardDetails,
    CardSetup,
    CardSetupRequest,
    CardToken,
    ChargeRequest,
    OperationResult,
    PaymentError,
    PaymentGateway,
    ProviderError,
    RefundRequest,
    UnknownOutcome,
)

__all__ = [
    "AuthenticationRequired",
    "CardDeclined",
    "CardDetails",
    "CardSetup",
    "CardSetupRequest",
    "CardToken",
    "ChargeRequest",
    "OperationResult",
    "PaymentError",
    "PaymentGateway",
    "ProviderError",
    "RefundRequest",
    "UnknownOutcome",
    "get_gateway",
]


def get_gateway() -> PaymentGateway:
    return import_string(settings.PAYMENT_GATEWAY)()
