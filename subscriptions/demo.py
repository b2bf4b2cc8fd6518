"""Demo plans and customers (README lists every login). Built through the real services, with
the clock set back, so the demo data is exactly what customers would have produced."""

from datetime import UTC, date, datetime, timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import CustomerType, User
from billing.gateways import CardDetails
from billing.gateways.simulated import SimulatedGateway
from billing.services import payment_method_add
from legal.models import TermsVersion
from subscriptions.models import Plan
from subscriptions.periods import add_days
from subscriptions.selectors import business_tz
from subscriptions.services import subscription_cancel, subscription_subscribe
from subscriptions.services.renew import subscription_renew, subscription_retry_payment

DEMO_PASSWORD = "demo-password"
ESSENTIAL = ["Protection en temps réel", "Analyse anti-malware", "Protection de 1 appareil"]
PREMIUM = ["Protection en temps réel", "Analyse anti-malware", "Protection de 5 appareils",
           "VPN illimité", "Assistance prioritaire"]
PLANS = [
    {"code": "essentiel-mensuel", "name": "Essentiel", "tier": 1, "interval": "month",
     "price_cents": 825, "features": ESSENTIAL},
    {"code": "premium-mensuel", "name": "Premium", "tier": 2, "interval": "month",
     "price_cents": 1250, "features": PREMIUM},
    {"code": "essentiel-annuel", "name": "Essentiel", "tier": 1, "interval": "year",
     "price_cents": 8250, "features": ESSENTIAL},
    {"code": "premium-annuel", "name": "Premium", "tier": 2, "interval": "year",
     "price_cents": 12500, "features": PREMIUM},
    {"code": "essentiel-engagement", "name": "Essentiel engagement 12 mois", "tier": 1,
     "interval": "month", "price_cents": 700, "commitment_months": 12, "features": ESSENTIAL},
]
DECLINING_CARD = "4000000000000341"  # sets up fine, then every charge is declined
# (email, first name, plan code or None, days since subscribing, days since cancelling)
CUSTOMERS = [
    ("demo@example.com", "Camille", "essentiel-mensuel", 20, None),
    ("annuel@example.com", "Louis", "premium-annuel", 160, None),
    ("nouveau@example.com", "Inès", "essentiel-annuel", 3, None),
    ("resilie@example.com", "Hugo", "premium-mensuel", 25, 2),
    ("engagement@example.com", "Léa", "essentiel-engagement", 18, None),
    ("sans-abonnement@example.com", "Jules", None, None, None),
]
# Renewals whose card is refused: (email, first name, plan code, days since subscribing,
# days of dunning run since the renewal). 1 day: past due; 8 days: suspended.
UNPAID = [
    ("impaye@example.com", "Nina", "essentiel-mensuel", 33, 2),
    ("suspendu@example.com", "Paul", "premium-mensuel", 39, 8),
]
# Customers whose VAT differs from a French consumer's (DESIGN §3): (email, first name, plan
# code, days since subscribing, billing details).
ABROAD = [
    ("pro@example.com", "Jonas", "premium-mensuel", 12, {
        "customer_type": CustomerType.BUSINESS, "company_name": "Nordlicht Software GmbH",
        "vat_number": "DE136695976", "address_line1": "Friedrichstraße 68",
        "postal_code": "10117", "city": "Berlin", "billing_country": "DE",
    }),
    ("finlande@example.com", "Aino", "essentiel-mensuel", 10, {
        "address_line1": "Mannerheimintie 12", "postal_code": "00100", "city": "Helsinki",
        "billing_country": "FI",
    }),
]
# Every other demo customer is billed at this French address.
FRENCH_ADDRESS = {"address_line1": "8 rue de la Paix", "postal_code": "75002", "city": "Paris",
                  "billing_country": "FR"}
STAFF = ("admin@example.com", "admin-password")


TERMS_BODY = """Abonnement mensuel : facturé chaque mois à la même date que votre abonnement \
initial. Abonnement annuel : facturé chaque année à la même date.

Garantie de remboursement de 14 jours : vous pouvez annuler votre abonnement pour toute raison \
dans les 14 jours suivant votre date d'abonnement initial et recevoir un remboursement à 100 %. \
Les remboursements sont traités sous 3 à 5 jours ouvrables.

Après 14 jours, vous pouvez annuler à tout moment depuis Mon compte → Abonnement et \
facturation. Votre abonnement reste actif jusqu'à la fin de la période de facturation en cours \
(fin de la période mensuelle pour les plans mensuels et annuels). Abonnements mensuels : aucun \
remboursement pour le mois en cours. Abonnements annuels : les mois complets restants sont \
remboursés.

Les abonnements se renouvellent automatiquement sauf annulation ; les frais sont facturés à \
l'avance pour la période à venir. Si un paiement échoue, nous réessaierons jusqu'à 3 fois sur \
7 jours ; si toutes les tentatives échouent, l'abonnement est suspendu, puis réactivé \
immédiatement dès le paiement réussi.

Mises à niveau : effet immédiat, facturation au prorata. Rétrogradations : au début du \
prochain cycle de facturation.

Nous pouvons modifier ces conditions ; les changements sont publiés ici et vous sont notifiés \
par e-mail. L'utilisation continue du service après la date d'effet vaut acceptation."""


def load_demo(*, now=None, stdout=None) -> None:
    now = now or timezone.now()
    TermsVersion.objects.get_or_create(
        version="2025-05-26",
        defaults={
            "title": "Conditions d'abonnement et politique de remboursement",
            "summary": "Première version publiée.",
            "body": TERMS_BODY,
            "effective_date": date(2025, 5, 26),
            "published_at": datetime(2025, 5, 26, tzinfo=UTC),
        },
    )
    for fields in PLANS:
        Plan.objects.update_or_create(code=fields["code"], defaults=fields)
    for email, first_name, plan_code, days_ago, cancelled_days_ago in CUSTOMERS:
        if User.objects.filter(email=email).exists():
            continue
        customer = _customer(email, first_name)
        if plan_code is None:
            continue
        subscribed_at = now - timedelta(days=days_ago, hours=2)
        subscription = subscription_subscribe(
            customer=customer,
            plan=Plan.objects.get(code=plan_code),
            card_token=_card_token("4242424242424242", now),
            now=subscribed_at,
        )
        if cancelled_days_ago is not None:
            subscription_cancel(subscription=subscription, reason="too_expensive",
                                actor_user=customer, now=now - timedelta(days=cancelled_days_ago))
    for email, first_name, plan_code, days_ago, dunning_days in UNPAID:
        if User.objects.filter(email=email).exists():
            continue
        customer = _customer(email, first_name)
        subscription = subscription_subscribe(
            customer=customer,
            plan=Plan.objects.get(code=plan_code),
            card_token=_card_token("4242424242424242", now),
            now=now - timedelta(days=days_ago),
        )
        renewal = subscription.current_period_end
        payment_method_add(customer=customer, now=renewal,
                           token=_card_token(DECLINING_CARD, now))
        invoice = subscription_renew(subscription_id=subscription.pk, now=renewal).invoice
        for day in settings.DUNNING_RETRY_DAYS:
            if day <= dunning_days:
                subscription_retry_payment(invoice_id=invoice.pk,
                                           now=add_days(renewal, day, tz=business_tz()))
    for email, first_name, plan_code, days_ago, details in ABROAD:
        if User.objects.filter(email=email).exists():
            continue
        subscription_subscribe(
            customer=_customer(email, first_name, **details),
            plan=Plan.objects.get(code=plan_code),
            card_token=_card_token("4242424242424242", now),
            now=now - timedelta(days=days_ago, hours=2),
        )
    if not User.objects.filter(email=STAFF[0]).exists():
        # The admin signs in through allauth (rate limits), which wants a verified address.
        staff = User.objects.create_superuser(STAFF[0], STAFF[1], first_name="Support")
        EmailAddress.objects.create(user=staff, email=STAFF[0], primary=True, verified=True)


def _card_token(number, now) -> str:
    """The demo customers typed their card into the simulated provider's fields."""
    return SimulatedGateway().tokenize_card(CardDetails(number, 12, now.year + 3, "123")).token


@transaction.atomic
def _customer(email, first_name, **details) -> User:
    customer = User.objects.create_user(email, DEMO_PASSWORD, first_name=first_name,
                                        last_name="Démo", **(details or FRENCH_ADDRESS))
    EmailAddress.objects.create(user=customer, email=email, primary=True, verified=True)
    return customer
