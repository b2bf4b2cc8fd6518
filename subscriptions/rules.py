"""One answer to "may I?" (DESIGN §2): a predicate per action, returning why not (a
``Refusal``) or None, and one table of the refusal messages. The pages decide which buttons to
show with these, the admin too, and the services refuse with them, so they never disagree.

Also here: whether an invoice may still be collected, per invoice kind."""

from datetime import UTC
from enum import StrEnum

from django.utils.translation import gettext_lazy as _

from billing.dunning import awaiting_authentication
from billing.models import Charge, Invoice
from subscriptions.models import RUNNING_STATUSES, Channel, Status
from subscriptions.policy import Rule
from subscriptions.selectors import business_tz, cancellation_quote, cancellation_refunded
from subscriptions.withdrawal_period import withdrawal_open


class Refusal(StrEnum):
    OTHER_CHANNEL = "other_channel"
    ENDED = "ended"
    ALREADY_CANCELLED = "already_cancelled"
    NOT_CANCELLED = "not_cancelled"
    CANCELLATION_REFUNDED = "cancellation_refunded"
    UNPAID = "unpaid"
    AUTO_RENEW_OFF = "auto_renew_off"
    RENEWAL_IN_PROGRESS = "renewal_in_progress"
    PLAN_CHANGE_IN_PROGRESS = "plan_change_in_progress"
    NOTHING_TO_PAY = "nothing_to_pay"
    CANCELLED_UNPAID = "cancelled_unpaid"
    UNPAID_PERIOD_OVER = "unpaid_period_over"
    PAYMENT_IN_PROGRESS = "payment_in_progress"
    STILL_RUNNING = "still_running"
    PLAN_NOT_SOLD = "plan_not_sold"
    EXTEND_UNPAID = "extend_unpaid"
    NOT_AWAITING_AUTHENTICATION = "not_awaiting_authentication"
    WITHDRAWAL_PERIOD_OVER = "withdrawal_period_over"
    COMMITMENT_RUNNING = "commitment_running"


MESSAGES = {
    Refusal.OTHER_CHANNEL: _("Cet abonnement a été souscrit via %(channel)s : il se gère auprès "
                             "de lui."),
    Refusal.ENDED: _("Cet abonnement est terminé : vous pouvez souscrire à nouveau."),
    Refusal.ALREADY_CANCELLED: _("Le renouvellement automatique de cet abonnement est déjà "
                                 "désactivé."),
    Refusal.NOT_CANCELLED: _("Le renouvellement automatique est déjà actif."),
    Refusal.CANCELLATION_REFUNDED: _(
        "Un remboursement a été effectué pour cette résiliation : le renouvellement "
        "automatique ne peut plus être réactivé. Vous pourrez souscrire à nouveau à la fin de "
        "la période."),
    Refusal.UNPAID: _("Réglez d'abord la facture en attente : vous pourrez ensuite changer de "
                      "formule."),
    Refusal.AUTO_RENEW_OFF: _("Le renouvellement automatique de cet abonnement est désactivé : "
                              "réactivez-le pour changer de formule."),
    Refusal.RENEWAL_IN_PROGRESS: _("Votre abonnement est en cours de renouvellement : "
                                   "réessayez dans quelques minutes."),
    Refusal.PLAN_CHANGE_IN_PROGRESS: _("Un changement de formule est en cours de paiement. "
                                       "Merci de patienter quelques minutes avant de "
                                       "réessayer."),
    Refusal.NOTHING_TO_PAY: _("Aucune facture n'est à payer pour cet abonnement."),
    Refusal.CANCELLED_UNPAID: _("Cet abonnement a été résilié : la facture en attente ne sera "
                                "pas prélevée."),
    Refusal.UNPAID_PERIOD_OVER: _("La période impayée est terminée : cet abonnement va prendre "
                                  "fin. Vous pourrez souscrire à nouveau."),
    Refusal.PAYMENT_IN_PROGRESS: _("Un paiement de cette facture est déjà en cours de "
                                   "traitement."),
    Refusal.STILL_RUNNING: _("Cet abonnement est toujours en cours."),
    Refusal.PLAN_NOT_SOLD: _("Cette formule n'est plus proposée : choisissez une offre."),
    Refusal.EXTEND_UNPAID: _("Le renouvellement de cet abonnement est impayé : relancez le "
                             "paiement ou terminez l'abonnement plutôt que de le prolonger."),
    Refusal.NOT_AWAITING_AUTHENTICATION: _("Ce paiement n'attend pas de confirmation de votre "
                                           "part : vous pouvez le régler avec « Payer "
                                           "maintenant »."),
    Refusal.WITHDRAWAL_PERIOD_OVER: _(
        "Le délai de rétractation de 14 jours est écoulé : il n'est plus possible de renoncer "
        "à ce contrat. Vous pouvez le résilier avec « Résilier mon contrat », en bas de chaque "
        "page."),
    Refusal.COMMITMENT_RUNNING: _(
        "Votre formule avec engagement court encore : le contrat se poursuit jusqu'à la fin de "
        "l'engagement et les échéances restantes restent dues. Vous pourrez supprimer votre "
        "compte une fois le contrat terminé."),
}


def refusal_message(refusal: Refusal, subscription) -> str:
    return str(MESSAGES[refusal]) % {"channel": subscription.get_channel_display()}


def require(refusal: Refusal | None, subscription, error: type[Exception]) -> None:
    """Raise the service's own ``error`` with the refusal's message, if there is one."""
    if refusal is not None:
        raise error(refusal_message(refusal, subscription))


# Customer actions


def cancel_refusal(subscription, *, now) -> Refusal | None:
    if subscription.channel != Channel.DIRECT:
        return Refusal.OTHER_CHANNEL
    if subscription.status == Status.ENDED:
        return Refusal.ENDED
    if not subscription.auto_renew:
        return Refusal.ALREADY_CANCELLED
    return None


def withdrawal_refusal(subscription, *, now) -> Refusal | None:
    """"Renoncer au contrat ici" (droit de rétractation, DESIGN §8): a contract concluded here,
    still running, during its withdrawal period (subscriptions.withdrawal_period: until the
    end of the fourteenth day after ``started_at``, extended past a weekend or holiday)."""
    if subscription.channel != Channel.DIRECT:
        return Refusal.OTHER_CHANNEL
    if subscription.status == Status.ENDED:
        return Refusal.ENDED
    if not withdrawal_open(concluded_at=subscription.started_at, now=now, tz=business_tz()):
        return Refusal.WITHDRAWAL_PERIOD_OVER
    return None


def account_delete_refusal(subscription, *, now) -> Refusal | None:
    """Whether deleting the account may end this subscription now (accounts.services).

    Not while a commitment binds the customer to further periods: the contract runs to the
    commitment's end and its remaining instalments stay due (Code civil, art. 1103 and 1212:
    a fixed-term contract is performed to its term), and those need the account and its card.
    Inside the refund window the cancellation ends it with a full refund, so it may."""
    if subscription.channel != Channel.DIRECT:
        return Refusal.OTHER_CHANNEL
    if subscription.status == Status.ENDED:
        return None
    quote = cancellation_quote(subscription=subscription, now=now)
    if quote.rule == Rule.COMMITMENT and quote.access_ends_at > subscription.current_period_end:
        return Refusal.COMMITMENT_RUNNING
    return None


def reactivate_refusal(subscription, *, now) -> Refusal | None:
    """Undo a cancellation until ``ends_at``, unless a refund was paid for it."""
    if subscription.channel != Channel.DIRECT:
        return Refusal.OTHER_CHANNEL
    if subscription.auto_renew and subscription.status != Status.ENDED:
        return Refusal.NOT_CANCELLED
    if subscription.status == Status.ENDED or (
        subscription.ends_at is not None and now >= subscription.ends_at
    ):
        return Refusal.ENDED
    if cancellation_refunded(subscription=subscription):
        return Refusal.CANCELLATION_REFUNDED
    return None


def plan_change_refusal(subscription, *, now) -> Refusal | None:
    """Whether this subscription may change plan at all now (each plan has its own reasons,
    see services.change_plan)."""
    if subscription.channel != Channel.DIRECT:
        return Refusal.OTHER_CHANNEL
    if subscription.status == Status.ENDED:
        return Refusal.ENDED
    if subscription.status != Status.ACTIVE:
        return Refusal.UNPAID
    if not subscription.auto_renew:
        return Refusal.AUTO_RENEW_OFF
    instant = now.astimezone(UTC)  # compared as instants, not wall clocks
    if (
        not subscription.current_period_start <= instant < subscription.current_period_end
        or renewal_started(subscription)
    ):
        # The period is over (or being renewed) and its renewal has not been paid yet:
        # nothing may prorate it or change what the renewal invoices.
        return Refusal.RENEWAL_IN_PROGRESS
    if subscription.invoices.filter(kind=Invoice.Kind.PRORATION,
                                    status__in=[Invoice.Status.DRAFT,
                                                Invoice.Status.OPEN]).exists():
        return Refusal.PLAN_CHANGE_IN_PROGRESS
    return None


def withdraw_plan_change_refusal(subscription, *, now) -> Refusal | None:
    if subscription.channel != Channel.DIRECT:
        return Refusal.OTHER_CHANNEL
    if (
        subscription.status != Status.ACTIVE
        or now.astimezone(UTC) >= subscription.current_period_end
        or renewal_started(subscription)
    ):
        return Refusal.RENEWAL_IN_PROGRESS
    return None


def pay_now_refusal(subscription, *, now, invoice=None) -> Refusal | None:
    """"Payer maintenant" (or support's "retry now") of the open renewal invoice."""
    if subscription.channel != Channel.DIRECT:
        return Refusal.OTHER_CHANNEL
    invoice = invoice or open_renewal_invoice(subscription)
    if subscription.status not in (Status.PAST_DUE, Status.SUSPENDED) or invoice is None:
        return Refusal.NOTHING_TO_PAY
    if not renewal_collectable(subscription, invoice):
        return Refusal.CANCELLED_UNPAID
    if invoice.period_end <= now:
        return Refusal.UNPAID_PERIOD_OVER
    if invoice.charges.filter(status__in=[Charge.Status.PENDING, Charge.Status.UNKNOWN]).exists():
        return Refusal.PAYMENT_IN_PROGRESS
    return None


def confirm_payment_refusal(subscription, *, now, invoice=None) -> Refusal | None:
    """"Confirmer votre paiement" (DESIGN §6, §9): the open renewal invoice waits for the
    customer's 3-D Secure, and could be paid now. The banner, the page of the email's link
    and its service ask this."""
    invoice = invoice or open_renewal_invoice(subscription)
    refusal = pay_now_refusal(subscription, now=now, invoice=invoice)
    if refusal is not None:
        return refusal
    if not awaiting_authentication(invoice):
        return Refusal.NOT_AWAITING_AUTHENTICATION
    return None


def restart_refusal(subscription, *, now) -> Refusal | None:
    """"Renouveler" after the end (or once an expiry is due)."""
    if subscription.channel != Channel.DIRECT:
        return Refusal.OTHER_CHANNEL
    expired = (not subscription.auto_renew and subscription.ends_at is not None
               and subscription.ends_at <= now)
    if subscription.status != Status.ENDED and not expired:
        return Refusal.STILL_RUNNING
    if not subscription.plan.is_active:
        return Refusal.PLAN_NOT_SOLD
    return None


# Staff actions (DESIGN §11); cancel, reactivate and retry payment ask the predicates above.


def direct_refusal(subscription, *, now=None) -> Refusal | None:
    """Refund, resend an email, regenerate the licence: any subscription bought here."""
    return Refusal.OTHER_CHANNEL if subscription.channel != Channel.DIRECT else None


def end_now_refusal(subscription, *, now=None) -> Refusal | None:
    if subscription.channel != Channel.DIRECT:
        return Refusal.OTHER_CHANNEL
    if subscription.status == Status.ENDED:
        return Refusal.ENDED
    return None


def extend_refusal(subscription, *, now=None) -> Refusal | None:
    refusal = end_now_refusal(subscription)
    if refusal is None and subscription.status != Status.ACTIVE:
        return Refusal.EXTEND_UNPAID
    if refusal is None and renewal_started(subscription):
        # The next period is invoiced (its charge may be waiting on the provider): paying it
        # sets the period from the invoice, so days given now would be lost, and the moved
        # anchor would invoice part of the paid period again.
        return Refusal.RENEWAL_IN_PROGRESS
    return refusal


# Collection: may this invoice still be charged?


def renewal_started(subscription) -> bool:
    """Has the renewal job invoiced the next period (its charge may still be on its way)?"""
    return subscription.invoices.filter(
        kind=Invoice.Kind.RENEWAL, period_start__gte=subscription.current_period_end
    ).exists()


def open_renewal_invoice(subscription):
    return (
        subscription.invoices.filter(kind=Invoice.Kind.RENEWAL, status=Invoice.Status.OPEN)
        .order_by("-period_start")
        .first()
    )


def expiry_due(subscription, *, now) -> bool:
    """Auto-renewal off and ``ends_at`` passed: the subscription is over (``expired``)."""
    return (subscription.status != Status.ENDED and not subscription.auto_renew
            and subscription.ends_at is not None and subscription.ends_at <= now)


def renewal_collectable(subscription, invoice) -> bool:
    """Not once the subscription ended or was cancelled for that period (a commitment keeps it
    chargeable until its end)."""
    if subscription.status == Status.ENDED:
        return False
    return subscription.auto_renew or (
        subscription.ends_at is not None and subscription.ends_at > invoice.period_start
    )


def proration_collectable(subscription, invoice) -> bool:
    """Only while the period it prorates is the current one and its renewal has not begun:
    the renewal invoices the plan it found, and paying it sets that plan."""
    return (
        subscription.status == Status.ACTIVE
        and subscription.auto_renew
        and subscription.plan_id != invoice.plan_id
        and subscription.current_period_start <= invoice.period_start
        < subscription.current_period_end
        and not renewal_started(subscription)
    )


def initial_collectable(subscription, invoice) -> bool:
    """A first payment: for a new subscription, or to restart an ended one."""
    if subscription is None:
        return not invoice.customer.subscriptions.filter(status__in=RUNNING_STATUSES).exists()
    return subscription.status == Status.ENDED


COLLECTABLE = {
    Invoice.Kind.INITIAL: initial_collectable,
    Invoice.Kind.RENEWAL: renewal_collectable,
    Invoice.Kind.PRORATION: proration_collectable,
}


def invoice_collectable(subscription, invoice) -> bool:
    return COLLECTABLE[invoice.kind](subscription, invoice)

