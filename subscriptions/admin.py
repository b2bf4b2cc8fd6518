from django.contrib import admin

from subscriptions.models import Plan, Subscription, SubscriptionEvent


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "tier", "interval", "price_cents", "commitment_months",
                    "is_active"]
    list_filter = ["interval", "is_active"]


class SubscriptionEventInline(admin.TabularInline):
    model = SubscriptionEvent
    extra = 0
    can_delete = False
    fields = ["at", "kind", "actor", "actor_user", "amount_cents", "data"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "plan", "status", "channel", "auto_renew",
                    "current_period_end", "ends_at"]
    list_filter = ["status", "plan", "channel", "auto_renew"]
    search_fields = ["customer__email", "customer__customer_number", "licence_key"]
    list_select_related = ["customer", "plan"]
    inlines = [SubscriptionEventInline]
    readonly_fields = [f.name for f in Subscription._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
