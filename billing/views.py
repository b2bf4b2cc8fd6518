from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters

from billing.forms import CardForm
from billing.gateways import CardDeclined
from billing.messages import decline_message
from billing.selectors import default_card
from billing.services import payment_method_add


@sensitive_post_parameters("card_number", "cvc")
@login_required
def card_update(request):
    form = CardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            payment_method_add(customer=request.user, card=form.card_details())
        except CardDeclined as declined:
            form.add_error(None, decline_message(declined.code))
        else:
            messages.success(request, _("Votre carte a été mise à jour."))
            return redirect("subscriptions:billing")
    return render(request, "billing/card_update.html",
                  {"form": form, "card": default_card(customer=request.user)})
