"""Support requests in admin (DESIGN §11): the thread read-only, a reply form and the refund
decision page, both going through support.services."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods, require_POST

from accounts.action_keys import ActionRefused, perform_once
from billing.templatetags.money import money
from support.forms import RefundDecisionForm, StaffReplyForm
from support.models import SupportMessage, SupportRequest
from support.selectors import support_refundable_charges
from support.services import (
    SupportError,
    support_refund_approve,
    support_refund_refuse,
    support_reply_add,
)

ANSWER_PERMISSION = "support.change_supportrequest"


class SupportMessageInline(admin.TabularInline):
    """The thread, append-only: messages are added through the reply form."""

    model = SupportMessage
    extra = 0
    can_delete = False
    fields = ["created_at", "author", "author_user", "body"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SupportRequest)
class SupportRequestAdmin(admin.ModelAdmin):
    list_display = ["reference", "customer", "subject", "category", "status",
                    "refund_decision", "last_message_at"]
    list_filter = ["status", "category", "refund_decision"]
    search_fields = ["reference", "customer__email", "customer__customer_number"]
    list_select_related = ["customer"]
    readonly_fields = ["reference", "customer_link", "subscription_link", "subject", "category",
                       "status", "created_at", "last_message_at", "refund_decision", "refund",
                       "decided_by", "decided_at"]
    fields = readonly_fields
    inlines = [SupportMessageInline]
    change_form_template = "support/admin/change_form.html"

    # Requests come from customers and are changed only through the reply and refund forms
    # (permission "support.change_supportrequest"), never edited or deleted by hand.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="client")
    def customer_link(self, obj):
        label = f"{obj.customer.email} ({obj.customer.customer_number})"
        try:
            url = reverse("admin:accounts_user_change", args=[obj.customer_id])
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="abonnement")
    def subscription_link(self, obj):
        if obj.subscription_id is None:
            return "—"
        url = reverse("admin:subscriptions_subscription_change", args=[obj.subscription_id])
        return format_html('<a href="{}">{}</a>', url, obj.subscription)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/repondre/", wrap(self.reply_view), name="support_supportrequest_reply"),
            path("<int:pk>/remboursement/", wrap(self.refund_view),
                 name="support_supportrequest_refund"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_answer": request.user.has_perm(ANSWER_PERMISSION),
            "reply_form": StaffReplyForm(),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def _answerable(self, request, pk) -> SupportRequest:
        if not request.user.has_perm(ANSWER_PERMISSION):
            raise PermissionDenied
        support_request = (
            SupportRequest.objects.select_related("customer", "subscription__plan")
            .filter(pk=pk).first()
        )
        if support_request is None:
            raise Http404
        return support_request

    def _change_url(self, support_request):
        return reverse("admin:support_supportrequest_change", args=[support_request.pk])

    def reply_view(self, request, pk):
        return require_POST(self._reply)(request, pk)

    def _reply(self, request, pk):
        support_request = self._answerable(request, pk)
        form = StaffReplyForm(request.POST)
        outcome = perform_once(key=form.posted_action_key, user=request.user,
                               perform=lambda: self._send_reply(request, support_request, form))
        messages.add_message(request, outcome.level, outcome.message)
        return HttpResponseRedirect(self._change_url(support_request))

    def _send_reply(self, request, support_request, form) -> tuple[int, str]:
        if not form.is_valid():
            errors = " ".join(error for errors in form.errors.values() for error in errors)
            raise ActionRefused(f"Réponse non envoyée : {errors}")
        try:
            support_reply_add(request=support_request, staff_user=request.user,
                              body=form.cleaned_data["body"], status=form.cleaned_data["status"])
        except SupportError as error:
            raise ActionRefused(f"Réponse non envoyée : {error}") from error
        return messages.SUCCESS, f"Réponse envoyée à {support_request.customer.email}."

    def refund_view(self, request, pk):
        return require_http_methods(["GET", "POST"])(self._refund)(request, pk)

    def _refund(self, request, pk):
        support_request = self._answerable(request, pk)
        if request.method == "GET" and not support_request.refund_pending:
            messages.error(request, _not_pending_reason(support_request))
            return HttpResponseRedirect(self._change_url(support_request))
        charges = support_refundable_charges(request=support_request)
        form = RefundDecisionForm(request.POST or None, charges=charges)
        if request.method == "POST":
            outcome = perform_once(key=form.posted_action_key, user=request.user,
                                   perform=lambda: self._decide(request, support_request, form))
            messages.add_message(request, outcome.level, outcome.message)
            if not outcome.refused or not support_request.refund_pending:
                return HttpResponseRedirect(self._change_url(support_request))
        return render(request, "support/admin/refund_decision.html", {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": support_request,
            "title": f"Demande de remboursement {support_request.reference}",
            "form": form,
            "charges": charges,
            "thread": support_request.messages.all(),
        })

    def _decide(self, request, support_request, form) -> tuple[int, str]:
        if not support_request.refund_pending:
            raise ActionRefused(_not_pending_reason(support_request))
        if not form.is_valid():
            raise ActionRefused("Rien n'a été fait : corrigez les erreurs ci-dessous.")
        data = form.cleaned_data
        try:
            if data["decision"] == RefundDecisionForm.APPROVE:
                refund = support_refund_approve(
                    request=support_request, staff_user=request.user,
                    charge=data["charge_obj"], amount_cents=data["amount_cents"],
                    body=data["body"],
                )
                return messages.SUCCESS, (
                    f"Remboursement de {money(refund.amount_cents, refund.currency)} accordé ; "
                    "le client en est informé par e-mail.")
            support_refund_refuse(request=support_request, staff_user=request.user,
                                  body=data["body"])
        except SupportError as error:
            raise ActionRefused(f"Rien n'a été fait : {error}") from error
        return messages.SUCCESS, "Remboursement refusé ; le client en est informé par e-mail."


def _not_pending_reason(support_request) -> str:
    if support_request.category != SupportRequest.Category.REFUND:
        return "Cette demande n'est pas une demande de remboursement."
    if support_request.subscription_id is None:
        return ("Cette demande ne concerne aucun abonnement : remboursez le paiement depuis "
                "l'abonnement du client.")
    return (f"Cette demande de remboursement a déjà été traitée "
            f"({support_request.get_refund_decision_display().lower()}).")
