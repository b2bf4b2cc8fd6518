from datetime import timedelta

import factory
from allauth.account.models import EmailAddress

from accounts.models import User
from billing.gateways import CardDetails
from billing.gateways.simulated import SimulatedGateway
from subscriptions.models import Plan
from subscriptions.services import subscription_subscribe

PASSWORD = "correct-horse-battery"
SUCCESS_CARD = "4242424242424242"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"client{n}@example.com")
    first_name = "Camille"
    last_name = "Martin"
    billing_country = "FR"
    # A complete billing address, which the checkout asks for before the first invoice.
    address_line1 = "12 rue des Lilas"
    postal_code = "75011"
    city = "Paris"
    preferred_language = "fr"
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def verified(user, create, extracted, **kwargs):
        user.save()
        if create and extracted is not False:
            EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.LazyAttribute(lambda plan: f"Formule {plan.code}")
    tier = 1
    interval = "month"
    price_cents = 825
    features = factory.LazyFunction(lambda: ["Protection en temps réel", "1 appareil"])

    class Params:
        annual = factory.Trait(interval="year", price_cents=8250)


def card_token(number=SUCCESS_CARD, exp_month=12, exp_year=2030, cvc="123") -> str:
    """What the simulated provider's card fields give the portal for this card (its
    tokenizer, standing for the provider's servers, is the only code that sees the number)."""
    return SimulatedGateway().tokenize_card(CardDetails(number, exp_month, exp_year, cvc)).token


def subscribed(*, customer=None, plan=None, at, card=SUCCESS_CARD):
    """A subscription made the way a customer makes one: card tokenized by the provider, set
    up and the first invoice charged through the simulated provider, at the instant ``at``."""
    customer = customer or UserFactory()
    plan = plan or PlanFactory()
    return subscription_subscribe(customer=customer, plan=plan, now=at,
                                  card_token=card_token(card, 12, at.year + 3))


def days(n):
    return timedelta(days=n)


def open_renewal(subscription):
    """The subscription's open renewal invoice (its collection state: DESIGN §6), or None."""
    from billing.models import Invoice

    return subscription.invoices.filter(kind=Invoice.Kind.RENEWAL,
                                        status=Invoice.Status.OPEN).first()


def next_retry_at(subscription):
    invoice = open_renewal(subscription)
    return invoice.next_retry_at if invoice else None


def saved_card(customer, number, now):
    """The customer enters this card (it becomes the default), as "Mettre à jour la carte";
    a card the bank wants authenticated at setup (3184, 3155) is, by its cardholder."""
    from billing.gateways.simulated import challenge_complete
    from billing.services import (
        SetupAuthenticationRequired,
        card_setup_complete,
        payment_method_add,
    )

    try:
        return payment_method_add(customer=customer, now=now,
                                  token=card_token(number, 12, now.year + 4))
    except SetupAuthenticationRequired as pending:
        challenge_complete(client_secret=pending.setup.client_secret, approved=True)
        return card_setup_complete(customer=customer, setup=pending.setup, now=now)
