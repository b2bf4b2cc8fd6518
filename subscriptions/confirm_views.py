""""Confirmer votre paiement" (DESIGN §6, §9): the page of the "authentication required"
email's link (and of the billing page's banner), where the customer completes 3-D Secure for a
renewal invoice; its challenge and return pages also serve the customer's own payments the
bank wants authenticated at once (a first payment, a plan change).

- GET ``/compte/paiement/<token>/`` shows the amount and a button; it changes nothing.
- POST (CSRF) starts paying the invoice on-session (``subscription_confirm_payment``); a charge
  that needs the challenge leads to
- GET ``…/authentification/``, where the provider's script runs the challenge (the simulated
  provider's: a redirect to its challenge page with the client secret and the return URL).
  The customer's own payments that the bank wants authenticated at once (a first payment, a
  plan change) come here directly, with a link made for their invoice;
- GET ``…/retour/``, the provider's return: the portal asks the provider about the charge by its
  idempotency key (``charge_resume_apply``) and settles it as any other answer. It is a GET
  because the provider redirects there; it only learns what the provider already did (the
  reconciliation job would learn the same), so it is safe to repeat and carries no
  instruction of the customer's.

Every view requires the invoice's owner to be logged in (see payment_links). A refused link
changes nothing and says why: 400 not one of ours, 403 another customer's, 410 paid or expired,
409 refused for now by the predicate (e.g. a payment in progress)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from billing.gateways import get_gateway
from billing.messages import decline_message
from billing.models import Charge, Invoice, Refund
from billing.selectors import default_card
from legal.services import terms_acceptance_attach
from subscriptions.payment_links import (
    ConfirmLinkRefused,
    LinkRefusal,
    confirm_link_invoice,
    confirm_link_token,
)
from subscriptions.rules import refusal_message
from subscriptions.services.payments import charge_resume_apply
from subscriptions.services.renew import PaymentNotPossible, subscription_confirm_payment


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def confirm_payment(request, token):
    now = timezone.now()
    try:
        invoice = confirm_link_invoice(token=token, customer=request.user, now=now)
    except ConfirmLinkRefused as refused:
        return _refused(request, refused)
    if request.method == "POST":
        try:
            charge = subscription_confirm_payment(subscription=invoice.subscription, now=now)
        except PaymentNotPossible as error:
            messages.error(request, str(error))
            return redirect("subscriptions:billing")
        return payment_answered(request, charge)
    return render(request, "subscriptions/confirm_payment.html", {
        "invoice": invoice,
        "subscription": invoice.subscription,
        "card": default_card(customer=request.user),
    })


def payment_answered(request, charge):
    """Where the customer goes once their payment of a renewal invoice has an answer (this
    page's button, "Payer maintenant"): to the challenge when the bank asks for it."""
    if charge.status == Charge.Status.REQUIRES_ACTION:
        return challenge_redirect(charge)
    if charge.status == Charge.Status.SUCCEEDED:
        messages.success(request, _("Paiement accepté : votre abonnement est de nouveau actif. "
                                    "Merci !"))
    elif charge.status == Charge.Status.FAILED:
        messages.error(request, decline_message(charge.failure_code))
    else:
        messages.warning(request, _("Nous n'avons pas pu confirmer votre paiement. Ne le "
                                    "renouvelez pas : nous vérifions auprès de notre "
                                    "prestataire."))
    return redirect("subscriptions:billing")


def challenge_redirect(charge):
    """To the bank's challenge of a charge of the customer's waiting for it (any kind)."""
    return redirect("subscriptions:confirm_payment_challenge",
                    confirm_link_token(invoice=charge.invoice))


@never_cache
@require_safe
@login_required
def confirm_payment_challenge(request, token):
    try:
        invoice = confirm_link_invoice(token=token, customer=request.user,
                                       now=timezone.now(), reconciling=True)
    except ConfirmLinkRefused as refused:
        return _refused(request, refused)
    charge = _awaiting(invoice)
    if charge is None:
        if invoice.kind == Invoice.Kind.RENEWAL:
            return redirect("subscriptions:confirm_payment", token)
        return redirect("subscriptions:confirm_payment_return", token)
    return_url = request.build_absolute_uri(
        reverse("subscriptions:confirm_payment_return", args=[token]))
    return render(request, "subscriptions/confirm_payment_challenge.html", {
        "invoice": invoice,
        "client_secret": charge.client_secret,
        "return_url": return_url,
        "challenge_template": get_gateway().challenge_template,
        "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
    })


@never_cache
@require_safe
@login_required
def confirm_payment_return(request, token):
    now = timezone.now()
    try:
        invoice = confirm_link_invoice(token=token, customer=request.user, now=now,
                                       reconciling=True)
    except ConfirmLinkRefused as refused:
        return _refused(request, refused)
    charge = _awaiting(invoice)
    if charge is not None:
        charge_resume_apply(charge_id=charge.pk, now=now)
        charge.refresh_from_db()
    else:
        charge = invoice.charges.order_by("-attempt").first()
    if invoice.kind == Invoice.Kind.RENEWAL:
        return _renewal_answered(request, charge)
    return _own_payment_answered(request, invoice, charge, token)


def _renewal_answered(request, charge):
    if charge is not None and charge.status == Charge.Status.SUCCEEDED:
        messages.success(request, _("Paiement confirmé : votre abonnement est de nouveau actif. "
                                    "Merci !"))
    elif charge is not None and charge.status == Charge.Status.REQUIRES_ACTION:
        messages.warning(request, _("Votre paiement attend toujours votre confirmation : "
                                    "utilisez « Confirmer votre paiement » pour la terminer."))
    elif charge is not None and charge.status == Charge.Status.FAILED:
        messages.error(request, _("Le paiement n'a pas été confirmé auprès de votre banque : "
                                  "rien n'a été prélevé. Votre abonnement reste en attente de "
                                  "paiement ; vous pouvez réessayer avec « Confirmer votre "
                                  "paiement »."))
    else:
        messages.warning(request, _("Nous n'avons pas pu confirmer votre paiement. Ne le "
                                    "renouvelez pas : nous vérifions auprès de notre "
                                    "prestataire."))
    return redirect("subscriptions:billing")


def _own_payment_answered(request, invoice, charge, token):
    """A first payment or a plan change back from the challenge: done, refused (back to where
    it was chosen, nothing charged) or still waiting (back to the challenge)."""
    status = charge.status if charge is not None else None
    if status == Charge.Status.REQUIRES_ACTION:
        return redirect("subscriptions:confirm_payment_challenge", token)
    if status == Charge.Status.SUCCEEDED and charge.refunds.filter(
            reason=Refund.Reason.UNCOLLECTED).exists():
        messages.warning(request, _("Votre banque a confirmé le paiement, mais il n'était plus "
                                    "attendu (votre abonnement a changé entre-temps) : il vous "
                                    "est remboursé intégralement, sous 3 à 5 jours ouvrables."))
        return redirect("subscriptions:billing")
    if status == Charge.Status.SUCCEEDED:
        if invoice.kind == Invoice.Kind.INITIAL:
            invoice.refresh_from_db()
            terms_acceptance_attach(customer=request.user, subscription=invoice.subscription,
                                    since=invoice.created_at)
            messages.success(request, _("Bienvenue ! Votre abonnement %(plan)s est actif.")
                             % {"plan": invoice.plan.name})
        else:
            messages.success(request, _("C'est fait : votre abonnement est passé à %(plan)s. "
                                        "Un e-mail de confirmation vous a été envoyé.")
                             % {"plan": invoice.plan})
        return redirect("subscriptions:billing")
    if status == Charge.Status.FAILED:
        messages.error(request, decline_message(charge.failure_code))
        if invoice.kind == Invoice.Kind.PRORATION:
            return redirect("subscriptions:change_options", invoice.subscription_id)
        if invoice.subscription_id:
            return redirect("subscriptions:restart", invoice.subscription_id)
        return redirect("subscriptions:subscribe", invoice.plan.code)
    messages.warning(request, _("Nous n'avons pas pu confirmer votre paiement. Ne le "
                                "renouvelez pas : nous vérifions auprès de notre "
                                "prestataire."))
    return redirect("subscriptions:billing")


def _awaiting(invoice):
    return invoice.charges.filter(status=Charge.Status.REQUIRES_ACTION).order_by(
        "-attempt").first()


STATUS = {LinkRefusal.INVALID: 400, LinkRefusal.OTHER_CUSTOMER: 403, LinkRefusal.REFUSED: 409}


def _refused(request, refused: ConfirmLinkRefused):
    invoice = refused.invoice
    return render(
        request,
        "subscriptions/confirm_payment_refused.html",
        {
            "reason": str(refused.reason),
            "invoice": invoice,
            "expires_at": refused.claims.expires_at if refused.claims else None,
            "message": (refusal_message(refused.refusal, invoice.subscription)
                        if refused.refusal and invoice else ""),
        },
        status=STATUS.get(refused.reason, 410),
    )
