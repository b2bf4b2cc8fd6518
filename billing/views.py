from dataclasses import asdict

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from billing.documents import credit_note_document, invoice_document
from billing.forms import CardTokenForm
from billing.gateways import CardDeclined, CardSetup, get_gateway
from billing.messages import decline_message
from billing.pdf import credit_note_pdf, invoice_pdf
from billing.selectors import credit_note_for_customer, default_card, invoice_for_customer
from billing.services import SetupAuthenticationRequired, card_setup_complete, payment_method_add

# The card setup waiting for the bank's challenge, and where to go once it is answered.
PENDING_SETUP = "billing.card_setup_pending"


@login_required
def card_update(request):
    form = CardTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            payment_method_add(customer=request.user, token=form.token)
        except CardDeclined as declined:
            form.add_error(None, decline_message(declined.code))
        except SetupAuthenticationRequired as pending:
            return card_verification_start(request, pending.setup,
                                           then=reverse("subscriptions:billing"))
        else:
            request.session.pop(PENDING_SETUP, None)  # an older card's verification is void
            messages.success(request, _("Votre carte a été mise à jour."))
            return redirect("subscriptions:billing")
    return render(request, "billing/card_update.html",
                  {"form": form, "card": default_card(customer=request.user)})


def card_verification_start(request, setup: CardSetup, *, then: str):
    """The bank wants the new card authenticated before it is saved: the customer goes to
    the provider's challenge, then comes back to ``then`` (a path of the portal)."""
    request.session[PENDING_SETUP] = {"setup": asdict(setup), "then": then}
    return redirect("billing:card_verification")


def _pending_setup(request):
    pending = request.session.get(PENDING_SETUP)
    if not pending:
        return None, None
    return CardSetup(**pending["setup"]), pending["then"]


@never_cache
@require_safe
@login_required
def card_verification(request):
    """"Vérification de votre carte": the provider's script runs the bank's challenge."""
    setup, _then = _pending_setup(request)
    if setup is None:
        return redirect("billing:card_update")
    return render(request, "billing/card_verification.html", {
        "setup": setup,
        "client_secret": setup.client_secret,
        "return_url": request.build_absolute_uri(reverse("billing:card_verification_return")),
        "challenge_template": get_gateway().challenge_template,
        "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
    })


@never_cache
@require_safe
@login_required
def card_verification_return(request):
    """The provider's return from the challenge (a GET: it only learns what the bank
    decided, and completes the customer's own "Enregistrer la carte")."""
    setup, then = _pending_setup(request)
    if setup is None:
        return redirect("billing:card_update")
    pending = request.session.pop(PENDING_SETUP)  # once: a second return saves nothing more
    try:
        card_setup_complete(customer=request.user, setup=setup)
    except SetupAuthenticationRequired:
        request.session[PENDING_SETUP] = pending
        messages.warning(request, _("Votre banque attend toujours la confirmation de cette "
                                    "carte."))
        return redirect("billing:card_verification")
    except CardDeclined as declined:
        messages.error(request, decline_message(declined.code))
        return redirect("billing:card_update")
    messages.success(request, _("Votre carte a été vérifiée par votre banque et enregistrée."))
    return redirect(then)


def _own_invoice(request, number):
    """Someone else's invoice is a 404, as a missing one is: its existence is not disclosed."""
    invoice = invoice_for_customer(customer=request.user, number=number)
    if invoice is None:
        raise Http404
    return invoice


def _own_credit_note(request, number):
    credit_note = credit_note_for_customer(customer=request.user, number=number)
    if credit_note is None:
        raise Http404
    return credit_note


def _pdf_response(pdf: bytes, number: str) -> HttpResponse:
    return HttpResponse(pdf, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{number}.pdf"',
    })


@require_safe
@login_required
def invoice_detail(request, number):
    invoice = _own_invoice(request, number)
    return render(request, "billing/invoice_detail.html", {
        "invoice": invoice,
        "document": invoice_document(invoice),
    })


@require_safe
@login_required
def invoice_pdf_download(request, number):
    invoice = _own_invoice(request, number)
    return _pdf_response(invoice_pdf(invoice=invoice), invoice.number)


@require_safe
@login_required
def credit_note_detail(request, number):
    credit_note = _own_credit_note(request, number)
    return render(request, "billing/credit_note_detail.html", {
        "credit_note": credit_note,
        "document": credit_note_document(credit_note),
    })


@require_safe
@login_required
def credit_note_pdf_download(request, number):
    credit_note = _own_credit_note(request, number)
    return _pdf_response(credit_note_pdf(credit_note=credit_note), credit_note.number)
