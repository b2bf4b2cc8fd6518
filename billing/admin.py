from django.contrib import admin

from billing.models import Charge, CreditNote, Invoice, InvoiceLine, PaymentMethod, Refund


class ReadOnlyAdmin(admin.ModelAdmin):
    """Money history is append-only: nothing here is edited or deleted by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["number", "customer", "kind", "status", "total_cents", "issued_at"]
    list_filter = ["status", "kind"]
    search_fields = ["number", "customer__email", "customer__customer_number"]
    inlines = [InvoiceLineInline]


@admin.register(Charge)
class ChargeAdmin(ReadOnlyAdmin):
    list_display = ["idempotency_key", "customer", "amount_cents", "status", "failure_code",
                    "created_at"]
    list_filter = ["status"]
    search_fields = ["idempotency_key", "customer__email", "invoice__number"]


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["idempotency_key", "charge", "amount_cents", "status", "reason", "created_at"]
    list_filter = ["status", "reason"]


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    list_display = ["number", "invoice", "total_cents", "issued_at"]
    search_fields = ["number", "invoice__number"]


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdmin):
    list_display = ["customer", "brand", "last4", "exp_month", "exp_year", "is_default"]
    search_fields = ["customer__email"]
