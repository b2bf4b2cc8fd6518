from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from support.forms import SupportReplyForm, SupportRequestForm
from support.models import SupportRequest
from support.selectors import (
    customer_subscriptions_for_support,
    customer_support_request,
    customer_support_requests,
    support_thread,
)
from support.services import SupportError, support_message_add, support_request_create


@login_required
@require_http_methods(["GET"])
def request_list(request):
    return render(request, "support/request_list.html", {
        "support_requests": customer_support_requests(customer=request.user),
        "section": "support",
    })


@login_required
@require_http_methods(["GET", "POST"])
def request_create(request):
    subscriptions = customer_subscriptions_for_support(customer=request.user)
    initial = {}
    if request.method == "GET":
        category = request.GET.get("categorie")
        if category in SupportRequest.Category.values:
            initial["category"] = category
        subscription = subscriptions.filter(pk=_int(request.GET.get("abonnement"))).first()
        if subscription is not None:
            initial["subscription"] = subscription.pk
    form = SupportRequestForm(request.POST or None, subscriptions=subscriptions, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            support_request = support_request_create(
                customer=request.user,
                subject=form.cleaned_data["subject"],
                category=form.cleaned_data["category"],
                body=form.cleaned_data["body"],
                subscription=form.cleaned_data["subscription"],
            )
        except SupportError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _(
                "Votre demande %(reference)s a bien été envoyée. Nous vous répondrons par "
                "e-mail et sur cette page."
            ) % {"reference": support_request.reference})
            return redirect("support:detail", reference=support_request.reference)
    return render(request, "support/request_create.html", {"form": form, "section": "support"})


@login_required
@require_http_methods(["GET", "POST"])
def request_detail(request, reference):
    try:
        support_request = customer_support_request(customer=request.user, reference=reference)
    except SupportRequest.DoesNotExist:
        raise Http404 from None
    form = SupportReplyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            support_message_add(request=support_request, customer=request.user,
                                body=form.cleaned_data["body"])
        except SupportError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("Votre réponse a bien été envoyée."))
        return redirect("support:detail", reference=support_request.reference)
    return render(request, "support/request_detail.html", {
        "support_request": support_request,
        "thread": support_thread(request=support_request),
        "form": form,
        "section": "support",
    })


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
