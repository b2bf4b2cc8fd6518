from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.action_keys import ActionKeyForm, perform_once
from notifications.models import OutboxEmail
from subscriptions.services.staff import email_resend_recorded


class ResendConfirmForm(ActionKeyForm):
    pass


@admin.register(OutboxEmail)
class OutboxEmailAdmin(admin.ModelAdmin):
    """The outbox is history: read-only. "Renvoyer" queues a new copy (a new row)."""

    list_display = ["kind", "recipient", "customer_number", "subject", "status", "attempts",
                    "next_attempt_at", "created_at", "sent_at"]
    list_filter = ["status", "kind", "language"]
    show_facets = admin.ShowFacets.ALWAYS  # "Échec (3)": failed emails are counted at a glance
    search_fields = ["recipient", "customer__email", "customer__customer_number",
                     "=subscription__licence_key", "occasion_key", "subject"]
    list_select_related = ["customer"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in OutboxEmail._meta.fields]
    actions = ["resend"]

    @admin.display(description=_("numéro client"), ordering="customer__customer_number")
    def customer_number(self, email):
        return email.customer.customer_number if email.customer else ""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_resend_permission(self, request):
        # Resending is the one thing staff do with emails; the Support group has it.
        return request.user.has_perm("notifications.change_outboxemail")

    @admin.action(description=_("Renvoyer"), permissions=["resend"])
    def resend(self, request, queryset):
        """Asks for confirmation first; on the confirming POST, one copy per email selected."""
        emails = list(queryset.select_related("customer").order_by("pk"))
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": _("Renvoyer des e-mails"),
                "emails": emails,
                "opts": self.opts,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "select_across": request.POST.get("select_across", "0"),
                "form": ResendConfirmForm(),
            }
            return TemplateResponse(
                request, "admin/notifications/outboxemail/resend_confirmation.html", context
            )

        def perform():
            for email in emails:
                email_resend_recorded(email=email, staff_user=request.user)
            return messages.SUCCESS, gettext("E-mails remis en file d'envoi : %(count)d.") % {
                "count": len(emails)}

        outcome = perform_once(key=ResendConfirmForm(request.POST).posted_action_key,
                               user=request.user, perform=perform)
        self.message_user(request, outcome.message, outcome.level)
        return None
