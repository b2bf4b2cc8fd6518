import json
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing.dunning import charges_beyond_outage_horizon
from billing.exports.accounting import accounting_csv
from billing.exports.ereporting import ereporting_csv, ereporting_json
from billing.exports.period import Period, local_day
from billing.location import (
    CARD_COUNTRY_MATCH,
    CARD_COUNTRY_MISMATCH,
    CARD_COUNTRY_UNKNOWN,
    card_country_mismatch,
)
from billing.models import (
    Charge,
    CreditNote,
    Invoice,
    InvoiceLine,
    PaymentMethod,
    ProviderEvent,
    Refund,
    VatRate,
)
from billing.reporting import WINDOWS_DAYS, staff_report
from billing.templatetags.money import money
from billing.vat import vat_day, vat_rate
from billing.vat_rates import EU_COUNTRIES

REPORTING_PERMISSIONS = ["billing.view_invoice", "subscriptions.view_subscription"]
EXPORT_CONTENT_TYPES = {"csv": "text/csv; charset=utf-8",
                        "json": "application/json; charset=utf-8"}


class ReadOnlyAdmin(admin.ModelAdmin):
    """Money history is append-only: nothing here is added, edited or deleted by hand, not
    even by a superuser (refunds go through the staff actions and their services)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def money_column(field_name, description, currency_from=lambda obj: obj.currency):
    @admin.display(description=description, ordering=field_name)
    def column(self, obj):
        return money(getattr(obj, field_name), currency_from(obj))

    column.__name__ = f"{field_name.removesuffix('_cents')}_display"
    return column


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    fields = ["description", "net", "vat", "total"]
    readonly_fields = fields

    net = money_column("net_cents", _("HT"), lambda line: line.invoice.currency)
    vat = money_column("vat_cents", _("TVA"), lambda line: line.invoice.currency)
    total = money_column("total_cents", _("TTC"), lambda line: line.invoice.currency)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class CardCountryFilter(admin.SimpleListFilter):
    """Location evidence (DESIGN §14): the card that paid was issued in another country than
    the billing country."""

    title = _("pays de la carte ≠ pays de facturation")
    parameter_name = "card_country"

    def lookups(self, request, model_admin):
        return [("mismatch", _("Différents")), ("match", _("Identiques")),
                ("unknown", _("Pays de la carte inconnu"))]

    def queryset(self, request, queryset):
        conditions = {"mismatch": CARD_COUNTRY_MISMATCH, "match": CARD_COUNTRY_MATCH,
                      "unknown": CARD_COUNTRY_UNKNOWN}
        if self.value() in conditions:
            return queryset.filter(conditions[self.value()])
        return queryset


class ExportForm(forms.Form):
    """A period of days on the business time zone's calendar, both included."""

    # A browser's date field reads and sends ISO 8601 days, whatever the language.
    start = forms.DateField(label=_("Du"), widget=forms.DateInput(
        attrs={"type": "date"}, format="%Y-%m-%d"))
    end = forms.DateField(label=_("Au (inclus)"), widget=forms.DateInput(
        attrs={"type": "date"}, format="%Y-%m-%d"))

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            raise forms.ValidationError(_("La fin de la période précède son début."))
        return cleaned

    @staticmethod
    def last_month() -> dict:
        first_of_this_month = local_day(timezone.now()).replace(day=1)
        last = first_of_this_month - timedelta(days=1)
        return {"start": last.replace(day=1), "end": last}


class EReportingForm(ExportForm):
    format = forms.ChoiceField(label=_("Format"), choices=[
        ("csv", _("CSV (Excel : « ; » et virgule décimale)")),
        ("json", _("JSON (montants en centimes)")),
    ])


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["number", "customer", "kind", "status", "net", "vat", "total", "issued_at",
                    "paid_at", "billing_country", "card_country_display"]
    list_filter = ["status", "kind", "plan", "billing_country", CardCountryFilter]
    search_fields = ["number", "customer__email", "customer__customer_number",
                     "=subscription__licence_key"]
    list_select_related = ["customer"]
    date_hierarchy = "issued_at"
    fields = ["number", "customer", "subscription", "plan", "kind", "status", "period_start",
              "period_end", "billing_country", "card_country", "location_evidence", "vat_rate",
              "net", "vat", "total", "created_at", "issued_at", "paid_at", "declined_attempts",
              "dunning_started_at", "next_retry_at", "last_failure_kind"]
    readonly_fields = fields
    inlines = [InvoiceLineInline]

    net = money_column("net_cents", _("HT"))
    vat = money_column("vat_cents", _("TVA"))
    total = money_column("total_cents", _("TTC"))

    @admin.display(description=_("pays de la carte"), ordering="card_country")
    def card_country_display(self, invoice):
        if card_country_mismatch(invoice):
            return format_html('<strong class="card-country-mismatch" title="{}">⚠ {}</strong>',
                               _("Différent du pays de facturation"), invoice.card_country)
        return invoice.card_country or "–"

    @admin.display(description=_("preuve de localisation"))
    def location_evidence(self, invoice):
        if card_country_mismatch(invoice):
            return format_html(
                '<strong class="card-country-mismatch">⚠ {}</strong>',
                _("La carte qui a payé a été émise dans un autre pays (%(card)s) que le pays "
                  "de facturation (%(billing)s).") % {"card": invoice.card_country,
                                                      "billing": invoice.billing_country})
        if invoice.card_country:
            return _("La carte qui a payé a été émise dans le pays de facturation.")
        return _("Pays d'émission de la carte non communiqué par le prestataire.")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("reporting/", view(self.reporting_view), name="billing_reporting"),
            path("e-reporting/", view(self.ereporting_view), name="billing_ereporting"),
            path("export-comptable/", view(self.accounting_view), name="billing_accounting"),
            *super().get_urls(),
        ]

    def _export(self, request, *, form_class, name, title, help_text, renderers):
        """The period form (last month by default), then, once filled in, the file in the
        format chosen (``renderers``: format → function of the period). A read, so a GET: a
        bookmarked link gives the same file again. For staff who may view invoices."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = form_class(request.GET or None, initial=ExportForm.last_month())
        if form.is_valid():
            period = Period(form.cleaned_data["start"], form.cleaned_data["end"])
            extension = form.cleaned_data.get("format", "csv")
            response = HttpResponse(renderers[extension](period),
                                    content_type=EXPORT_CONTENT_TYPES[extension])
            response["Content-Disposition"] = (
                f'attachment; filename="{name}_{period.start.isoformat()}_'
                f'{period.end.isoformat()}.{extension}"')
            return response
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "help_text": help_text,
            "form": form,
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/billing/invoice/export.html", context)

    def ereporting_view(self, request):
        return self._export(
            request, form_class=EReportingForm, name="e-reporting",
            renderers={"csv": ereporting_csv, "json": ereporting_json},
            title=_("E-reporting des ventes aux particuliers"),
            help_text=_("Par jour (fuseau horaire %(time_zone)s) et par taux de TVA : base HT, "
                        "TVA et TTC des factures aux particuliers moins leurs avoirs, nombre "
                        "de transactions (factures + avoirs), et encaissements (paiements "
                        "reçus moins remboursements versés : la TVA des prestations de "
                        "services est exigible à l'encaissement).")
            % {"time_zone": settings.BUSINESS_TIME_ZONE})

    def accounting_view(self, request):
        return self._export(
            request, form_class=ExportForm, name="export-comptable",
            renderers={"csv": accounting_csv},
            title=_("Export comptable des factures et avoirs"),
            help_text=_("Toutes les factures et tous les avoirs émis sur la période, dans "
                        "l'ordre d'émission : numéro, date, client, HT, TVA par taux, TTC, "
                        "date et moyen de paiement ; les avoirs en montants négatifs."))

    def reporting_view(self, request):
        """Staff reporting (issue 5, scope 8); the figures come from billing.reporting."""
        if not request.user.has_perms(REPORTING_PERMISSIONS):
            raise PermissionDenied
        now = timezone.now()
        report = staff_report(now=now)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Tableau de bord"),
            "report": report,
            "windows": WINDOWS_DAYS,
            "cancellation_windows": [(days, report.cancellations[days]) for days in WINDOWS_DAYS],
            "now": now,
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/billing/reporting.html", context)


@admin.register(InvoiceLine)
class InvoiceLineAdmin(ReadOnlyAdmin):
    list_display = ["invoice", "description", "net", "vat", "total"]
    search_fields = ["=invoice__number", "invoice__customer__email",
                     "invoice__customer__customer_number"]
    list_select_related = ["invoice"]
    fields = ["invoice", "description", "net", "vat", "total"]
    readonly_fields = fields

    net = money_column("net_cents", _("HT"), lambda line: line.invoice.currency)
    vat = money_column("vat_cents", _("TVA"), lambda line: line.invoice.currency)
    total = money_column("total_cents", _("TTC"), lambda line: line.invoice.currency)


class AwaitingProviderFilter(admin.SimpleListFilter):
    """Charges the provider has not settled for longer than the outage horizon (DESIGN §6):
    retried by the system, never counted against the customer, but worth a look."""

    title = _("en attente du prestataire")
    parameter_name = "awaiting_provider"

    def lookups(self, request, model_admin):
        return [("beyond_horizon", _("Depuis plus de %(hours)s h")
                 % {"hours": settings.CHARGE_OUTAGE_HORIZON_HOURS})]

    def queryset(self, request, queryset):
        if self.value() == "beyond_horizon":
            return queryset.filter(
                pk__in=charges_beyond_outage_horizon(now=timezone.now()).values("pk"))
        return queryset


@admin.register(Charge)
class ChargeAdmin(ReadOnlyAdmin):
    list_display = ["idempotency_key", "customer", "invoice", "attempt", "amount", "status",
                    "initiated_by", "failure_code", "provider_errors", "created_at"]
    list_filter = [AwaitingProviderFilter, "status", "initiated_by", "invoice__kind"]
    search_fields = ["idempotency_key", "provider_reference", "customer__email",
                     "customer__customer_number", "=invoice__number",
                     "=invoice__subscription__licence_key"]
    list_select_related = ["customer", "invoice"]
    date_hierarchy = "created_at"
    fields = ["invoice", "customer", "payment_method", "attempt", "initiated_by", "amount",
              "status", "idempotency_key", "provider_reference", "failure_code",
              "failure_kind", "failure_message", "provider_errors", "last_error",
              "next_attempt_at", "created_at", "settled_at"]
    readonly_fields = fields

    amount = money_column("amount_cents", _("montant"))


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["idempotency_key", "charge", "amount", "status", "reason", "created_at",
                    "refunded_at"]
    list_filter = ["status", "reason"]
    search_fields = ["idempotency_key", "provider_reference", "charge__customer__email",
                     "charge__customer__customer_number", "=charge__invoice__number",
                     "=charge__invoice__subscription__licence_key", "=credit_note__number"]
    list_select_related = ["charge"]
    date_hierarchy = "created_at"
    fields = ["charge", "amount", "status", "reason", "idempotency_key", "provider_reference",
              "failure_message", "created_at", "refunded_at"]
    readonly_fields = fields

    amount = money_column("amount_cents", _("montant"))


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    list_display = ["number", "invoice", "customer", "net", "vat", "total", "issued_at"]
    search_fields = ["number", "=invoice__number", "invoice__customer__email",
                     "invoice__customer__customer_number", "=invoice__subscription__licence_key"]
    list_select_related = ["invoice__customer"]
    date_hierarchy = "issued_at"
    fields = ["number", "invoice", "refund", "net", "vat", "total", "issued_at"]
    readonly_fields = fields

    net = money_column("net_cents", _("HT"), lambda note: note.invoice.currency)
    vat = money_column("vat_cents", _("TVA"), lambda note: note.invoice.currency)
    total = money_column("total_cents", _("TTC"), lambda note: note.invoice.currency)

    @admin.display(description=_("client"), ordering="invoice__customer__email")
    def customer(self, note):
        return note.invoice.customer


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdmin):
    """Cards are shown masked; the provider's token is never displayed."""

    list_display = ["card", "customer", "expiry", "issuing_country", "is_default",
                    "created_at"]
    list_filter = ["brand", "is_default"]
    search_fields = ["customer__email", "customer__customer_number",
                     "=customer__subscriptions__licence_key", "=customer__invoices__number"]
    list_select_related = ["customer"]
    fields = ["customer", "card", "expiry", "issuing_country", "is_default", "created_at"]
    readonly_fields = fields

    @admin.display(description=_("carte"), ordering="brand")
    def card(self, method):
        return f"{method.brand} •••• {method.last4}"

    @admin.display(description=_("expiration"))
    def expiry(self, method):
        return f"{method.exp_month:02d}/{method.exp_year}"

    @admin.display(description=_("pays d'émission"), ordering="country")
    def issuing_country(self, method):
        return method.country or "–"


class ProcessedFilter(admin.SimpleListFilter):
    title = _("traitement")
    parameter_name = "processed"

    def lookups(self, request, model_admin):
        return [("yes", _("Traité")), ("pending", _("En attente")),
                ("error", _("En erreur (réessayé)"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(processed_at__isnull=False)
        if self.value() == "pending":
            return queryset.filter(processed_at__isnull=True)
        if self.value() == "error":
            return queryset.filter(processed_at__isnull=True, attempts__gt=0)
        return queryset


@admin.register(ProviderEvent)
class ProviderEventAdmin(ReadOnlyAdmin):
    """The provider's notifications (webhooks) as received, and what became of them."""

    list_display = ["event_id", "type", "received_at", "processed_at", "outcome", "note",
                    "attempts"]
    list_filter = [ProcessedFilter, "type", "outcome", "provider"]
    search_fields = ["=event_id", "type", "note"]
    date_hierarchy = "received_at"
    fields = ["provider", "event_id", "type", "received_at", "processed_at", "outcome", "note",
              "attempts", "error", "next_attempt_at", "payload_display"]
    readonly_fields = fields

    @admin.display(description=_("contenu"))
    def payload_display(self, event):
        return format_html("<pre style=\"white-space: pre-wrap\">{}</pre>",
                           json.dumps(event.payload, indent=2, ensure_ascii=False))


class VatRateForm(forms.ModelForm):
    class Meta:
        model = VatRate
        fields = ["country", "rate", "valid_from"]

    def clean_valid_from(self):
        valid_from = self.cleaned_data["valid_from"]
        if valid_from <= vat_day():
            raise forms.ValidationError(_("Un nouveau taux s'applique à partir d'un jour à "
                                          "venir : les factures déjà émises gardent le leur."))
        return valid_from

    def clean_country(self):
        country = self.cleaned_data["country"].upper()
        if country not in EU_COUNTRIES:
            raise forms.ValidationError(_("Ce tableau ne contient que les États membres de "
                                          "l'Union européenne."))
        return country


@admin.register(VatRate)
class VatRateAdmin(admin.ModelAdmin):
    """The member states' rates by date (DESIGN §3): superusers add a coming change; a rate
    already in force is never edited nor deleted (issued invoices were taxed with it)."""

    form = VatRateForm
    list_display = ["country", "rate", "valid_from"]
    list_filter = ["country"]
    ordering = ["country", "-valid_from"]

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        today = vat_day()
        in_force = [(country, vat_rate(country, on=today)) for country in sorted(EU_COUNTRIES)]
        return super().changelist_view(request, {**(extra_context or {}),
                                                 "rates_in_force": in_force, "today": today})
