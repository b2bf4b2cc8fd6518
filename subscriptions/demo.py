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


# The demo's terms (legal app), in two versions: the first one, and the one of the withdrawal
# function (DESIGN §8, in force since 19 June 2026). A version's label is a number, its date
# is its effective date, shown the French way by the terms page.
_PURPOSE = """Objet. Les présentes conditions régissent les abonnements à nos logiciels souscrits \
sur ce site. Les prix sont indiqués toutes taxes comprises (TTC), TVA du pays de facturation \
incluse."""

_BILLING = """Formules et facturation. Formule mensuelle : le prix est prélevé chaque mois, à la \
date anniversaire de la souscription. Formule annuelle : le prix est prélevé chaque année, à la \
même date. Chaque période est payée d'avance, avec la carte enregistrée dans votre espace \
client."""

_WITHDRAWAL_2025 = """Droit de rétractation. Vous disposez d'un délai de quatorze jours à \
compter de la souscription pour renoncer au contrat, sans avoir à vous justifier ni à payer de \
frais, en nous adressant une déclaration dénuée d'ambiguïté, par exemple en écrivant au \
support. Tout ce que vous avez payé pour ce contrat vous est alors remboursé, au plus tard \
quatorze jours après la réception de votre rétractation."""

_WITHDRAWAL = """Droit de rétractation. Vous disposez d'un délai de quatorze jours pour renoncer \
au contrat, sans avoir à vous justifier ni à payer de frais. Ce délai commence le lendemain de \
la souscription et se termine à la fin du quatorzième jour, heure de Paris (pour une \
souscription le 10 mars, jusqu'au 24 mars inclus) ; s'il se termine un samedi, un dimanche ou \
un jour férié, il est prolongé jusqu'à la fin du premier jour ouvrable suivant.

Pour exercer ce droit, utilisez la fonction « Renoncer au contrat ici », proposée pendant tout \
le délai dans Mon compte → Abonnement et facturation et en bas de chaque page de votre espace \
client : vérifiez votre nom, la référence du contrat et l'adresse e-mail qui recevra l'accusé \
de réception, puis cliquez sur « Confirmer la rétractation ». Vous pouvez aussi nous adresser \
toute autre déclaration dénuée d'ambiguïté, par exemple en écrivant au support. Le contrat \
prend fin aussitôt et tout ce que vous avez payé pour ce contrat vous est remboursé sur la \
carte utilisée pour le paiement, au plus tard quatorze jours après la réception de votre \
rétractation. Un accusé de réception indiquant la date et l'heure de réception vous est envoyé \
par e-mail et reste consultable dans votre espace client."""

_CANCELLATION = """Résiliation. Vous pouvez résilier votre contrat à tout moment, en trois clics, \
avec le lien « Résilier mon contrat » en bas de chaque page, ou avec « Annuler l'abonnement » \
dans Mon compte → Abonnement et facturation. Dans les quatorze jours qui suivent la \
souscription, la résiliation met fin au contrat immédiatement et vous êtes remboursé à 100 %. \
Ensuite, le renouvellement automatique est désactivé et votre abonnement reste actif jusqu'à \
la date d'effet de la résiliation : la fin du mois en cours, pour une formule annuelle comme \
pour une formule mensuelle. Formule mensuelle : le mois en cours n'est pas remboursé. Formule \
annuelle : les mois entiers restant à courir sont remboursés. Les remboursements sont versés \
sur votre carte sous 3 à 5 jours ouvrables. Un accusé de réception indiquant la date et \
l'heure de votre demande, sa date d'effet et ses conséquences vous est envoyé par e-mail."""

_COMMITMENT = """Formule avec engagement. La formule « Essentiel engagement 12 mois » est \
facturée chaque mois à un prix réduit, en contrepartie d'un engagement de douze mois à compter \
de la souscription. Une résiliation demandée pendant l'engagement prend effet à son terme : \
l'abonnement reste actif et les échéances mensuelles restent dues jusque-là. À l'issue de \
l'engagement, le contrat se poursuit de mois en mois et peut être résilié à tout moment, avec \
effet à la fin du mois en cours. L'engagement ne vous prive pas du droit de rétractation."""

_RENEWAL = """Reconduction tacite. Sauf résiliation, votre abonnement est reconduit tacitement à \
la fin de chaque période, pour une période de même durée, et le prix de la nouvelle période \
est prélevé à son début. Chaque prélèvement à venir vous est rappelé par e-mail, 3 jours avant \
pour une formule mensuelle et 7 jours avant pour une formule annuelle."""

_CHATEL = """Information sur la reconduction (article L215-1 du Code de la consommation, dit « loi \
Chatel »). Pour une formule annuelle et pour une formule avec engagement, nous vous informons \
par e-mail, au plus tôt trois mois et au plus tard un mois avant la date de reconduction, de \
votre droit de ne pas reconduire le contrat ; cet e-mail indique dans un encadré la date \
limite pour le faire. Si cette information ne vous a pas été adressée dans ce délai, vous \
pouvez mettre fin au contrat gratuitement, à tout moment à compter de la date de \
reconduction ; les sommes versées pour la période qui suit la résiliation vous sont alors \
remboursées dans un délai de trente jours à compter de celle-ci."""

_PAYMENT_INCIDENTS = """Incidents de paiement. Si un prélèvement échoue, nous le présentons de \
nouveau 1, 3 et 7 jours plus tard, et votre accès est maintenu pendant ce temps. Si la \
dernière tentative échoue, l'abonnement est suspendu ; il est réactivé dès que la facture est \
réglée avec « Payer maintenant » dans votre espace client, et prend fin si elle ne l'est pas \
avant la fin de la période concernée."""

_PLAN_CHANGES = """Changement de formule. Le passage à une formule supérieure prend effet \
immédiatement : la différence de prix est facturée au prorata du temps restant jusqu'à la fin \
de la période en cours. Le passage à une formule inférieure prend effet au début de la période \
suivante, sans frais."""

_CHANGES = """Modification des conditions. Toute modification des présentes conditions vous est \
annoncée par e-mail avant sa date d'effet et publiée sur cette page. Si vous ne l'acceptez pas, \
vous pouvez résilier votre contrat comme indiqué ci-dessus."""

_CONTACT = """Nous contacter. Pour toute question ou réclamation, écrivez-nous avec « Contacter le \
support », en bas de chaque page."""


def _terms_body(withdrawal) -> str:
    return "\n\n".join([_PURPOSE, _BILLING, withdrawal, _CANCELLATION, _COMMITMENT, _RENEWAL,
                        _CHATEL, _PAYMENT_INCIDENTS, _PLAN_CHANGES, _CHANGES, _CONTACT])


TERMS_TITLE = "Conditions générales d'abonnement"
TERMS_VERSIONS = [
    {"version": "1", "title": TERMS_TITLE, "summary": "Première version publiée.",
     "body": _terms_body(_WITHDRAWAL_2025), "effective_date": date(2025, 5, 26),
     "published_at": datetime(2025, 5, 26, tzinfo=UTC)},
    {"version": "2", "title": TERMS_TITLE,
     "summary": "Une fonction de rétractation en ligne : « Renoncer au contrat ici », puis "
                "« Confirmer la rétractation », avec un accusé de réception par e-mail.",
     "body": _terms_body(_WITHDRAWAL), "effective_date": date(2026, 6, 19),
     "published_at": datetime(2026, 5, 18, 8, tzinfo=UTC)},
]


def load_demo(*, now=None, stdout=None) -> None:
    now = now or timezone.now()
    for fields in TERMS_VERSIONS:
        TermsVersion.objects.get_or_create(version=fields["version"], defaults=fields)
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
