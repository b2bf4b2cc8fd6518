from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from billing.models import Invoice
from billing.templatetags.money import money
from subscriptions.models import Subscription


def admin_login(request):
    """/admin/login/ sends staff to allauth's login, so the admin is behind the same rate
    limits as the customer login; the ?next= back to the admin is kept."""
    if request.user.is_authenticated:
        if not request.user.is_staff:
            # The bare admin form would offer a second login; allauth would send the user
            # straight back here. Neither: this account has no business in the admin.
            raise PermissionDenied
        next_url = request.GET.get("next", "")
        if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
            next_url = reverse("admin:index")
        return redirect(next_url)
    url = reverse("account_login")
    query = request.GET.urlencode()
    return redirect(f"{url}?{query}" if query else url)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SubscriptionInline(ReadOnlyInline):
    model = Subscription
    fk_name = "customer"
    fields = ["plan", "status", "channel", "licence_key", "started_at", "current_period_end",
              "auto_renew", "ends_at"]
    readonly_fields = fields
    verbose_name_plural = _("abonnements")


class InvoiceInline(ReadOnlyInline):
    model = Invoice
    fields = ["number", "kind", "status", "total", "issued_at", "paid_at"]
    readonly_fields = fields
    verbose_name_plural = _("factures")

    @admin.display(description=_("total TTC"))
    def total(self, invoice):
        return money(invoice.total_cents, invoice.currency)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "customer_number", "first_name", "last_name", "billing_country",
                    "is_staff"]
    list_filter = ["is_staff", "is_superuser", "is_active", "billing_country", "groups"]
    # Support finds a customer by any key they are given (DESIGN §11).
    search_fields = ["email", "customer_number", "first_name", "last_name",
                     "=subscriptions__licence_key", "=invoices__number"]
    readonly_fields = ["customer_number", "last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["email", "password", "customer_number"]}),
        (_("Profil"), {"fields": ["first_name", "last_name", "billing_country",
                                  "preferred_language"]}),
        (_("Droits"), {"fields": ["is_active", "is_staff", "is_superuser", "groups",
                                  "user_permissions"]}),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    inlines = [SubscriptionInline, InvoiceInline]
