from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from billing.forms import CardTokenForm
from billing.gateways import CardDeclined
from billing.messages import decline_message
from billing.pdf import invoice_pdf
from billing.selectors import default_card, invoice_for_customer
from billing.services import payment_method_add


@login_required
def card_update(request):
    form = CardTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            payment_method_add(customer=request.user, token=form.token)
        except CardDeclined as declined:
            form.add_error(None, decline_message(declined.code))
        else:
            messages.success(request, _("Votre carte a été mise à jour."))
            return redirect("subscriptions:billing")
    return render(request, "billing/card_update.html",
                  {"form": form, "card": default_card(customer=request.user)})


def _own_invoice(request, number):
    """Someone else's invoice is a 404, as a missing one is: its existence is not disclosed."""
    invoice = invoice_for_customer(customer=request.user, number=number)
    if invoice is None:
        raise Http404
    return invoice


@require_safe
@login_required
def invoice_detail(request, number):
    invoice = _own_invoice(request, number)
    return render(request, "billing/invoice_detail.html", {
        "invoice": invoice,
        "customer": invoice.customer,
        "vendor": settings.VENDOR,
    })


@require_safe
@login_required
def invoice_pdf_download(request, number):
    invoice = _own_invoice(request, number)
    return HttpResponse(invoice_pdf(invoice=invoice), content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{invoice.number}.pdf"',
    })
