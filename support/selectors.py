"""Reads of the support app."""

from django.db.models import Count

from subscriptions.models import Subscription
from subscriptions.selectors import succeeded_charges_with_refundable
from support.models import SupportMessage, SupportRequest


def customer_support_requests(*, customer):
    """The customer's requests, latest activity first, each with ``message_count``."""
    return (
        SupportRequest.objects.filter(customer=customer)
        .select_related("subscription__plan")
        .annotate(message_count=Count("messages"))
    )


def customer_support_request(*, customer, reference) -> SupportRequest:
    """One of the customer's requests; raises SupportRequest.DoesNotExist for anyone else's."""
    return (
        SupportRequest.objects.select_related("subscription__plan", "customer")
        .get(customer=customer, reference=reference)
    )


def support_thread(*, request):
    return SupportMessage.objects.filter(request=request).select_related("author_user")


def customer_subscriptions_for_support(*, customer):
    """The subscriptions a customer may attach to a request: their own, running or not."""
    return Subscription.objects.filter(customer=customer).select_related("plan")


def support_refundable_charges(*, request) -> list:
    """The paid charges of the request's subscription that still hold something to refund,
    each with ``refundable_cents``."""
    if request.subscription_id is None:
        return []
    charges = succeeded_charges_with_refundable(subscription=request.subscription)
    return [charge for charge in charges if charge.refundable_cents > 0]
