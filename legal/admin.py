from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from legal.models import TermsAcceptance, TermsVersion
from legal.services import TermsPublishError, terms_version_publish

EDITABLE = ["version", "title", "summary", "body", "effective_date"]


@admin.action(description="Publier", permissions=["change"])
def publish(modeladmin, request, queryset):
    """Publish one drafted version, after a confirmation page: the customers with a running
    subscription are then emailed (in batches, by Celery)."""
    versions = list(queryset)
    if len(versions) != 1:
        modeladmin.message_user(request, "Sélectionnez une seule version à publier.",
                                messages.ERROR)
        return None
    version = versions[0]
    if version.published_at is not None:
        modeladmin.message_user(request, f"La version {version.version} est déjà publiée.",
                                messages.ERROR)
        return None
    if request.POST.get("confirm") != "yes":
        from legal.selectors import terms_recipients

        return TemplateResponse(request, "legal/admin_publish_confirm.html", {
            **modeladmin.admin_site.each_context(request),
            "title": "Publier une version des conditions",
            "opts": modeladmin.model._meta,
            "version": version,
            "recipients": terms_recipients().distinct().count(),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        })
    try:
        terms_version_publish(version=version)
    except TermsPublishError as error:
        modeladmin.message_user(request, str(error), messages.ERROR)
        return None
    modeladmin.message_user(
        request,
        f"Version {version.version} publiée : les clients ayant un abonnement en cours "
        "vont recevoir un e-mail.",
        messages.SUCCESS,
    )
    return None


@admin.register(TermsVersion)
class TermsVersionAdmin(admin.ModelAdmin):
    list_display = ["version", "title", "effective_date", "published_at"]
    list_filter = [("published_at", admin.EmptyFieldListFilter)]
    search_fields = ["version", "title"]
    actions = [publish]
    fields = [*EDITABLE, "published_at"]
    readonly_fields = ["published_at"]

    def get_readonly_fields(self, request, obj=None):
        # A published version is what customers accepted: it is never edited.
        if obj is not None and obj.published_at is not None:
            return [*EDITABLE, "published_at"]
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return obj is None or obj.published_at is None

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # would delete published versions too
        return actions


@admin.register(TermsAcceptance)
class TermsAcceptanceAdmin(admin.ModelAdmin):
    list_display = ["customer", "version", "subscription", "accepted_at"]
    list_select_related = ["customer", "version", "subscription__plan"]
    search_fields = ["customer__email", "customer__customer_number", "version__version"]
    list_filter = ["version"]
    readonly_fields = ["customer", "version", "subscription", "accepted_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
