"""Plans and subscriptions in the admin (DESIGN §11). Subscriptions are never edited by hand:
their page shows the timeline and every change goes through a staff action, each on its own
confirmation page, calling the same services as the portal."""

import re
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import (
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    Func,
    Q,
    Value,
)
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.action_keys import ActionKeyForm, ActionRefused, perform_once
from billing.models import Charge
from billing.parsing import WholeNumberField, euros_to_cents
from billing.selectors import default_card
from billing.templatetags.money import money
from formats.dates import long_date, long_datetime
from subscriptions.models import (
    RUNNING_STATUSES,
    Actor,
    CancelReason,
    Channel,
    Plan,
    Status,
    Subscription,
)
from subscriptions.rules import (
    cancel_refusal,
    direct_refusal,
    end_now_refusal,
    extend_refusal,
    open_renewal_invoice,
    pay_now_refusal,
    reactivate_refusal,
    refusal_message,
)
from subscriptions.selectors import (
    business_tz,
    cancellation_quote,
    cancellation_refunded,
    open_dispute_events,
    succeeded_charges_with_refundable,
)
from subscriptions.services.cancel import (
    CancellationError,
    subscription_auto_renew_reactivate,
    subscription_cancel,
)
from subscriptions.services.staff import (
    EXTEND_MAX_DAYS,
    StaffActionError,
    end_now_refundable_cents,
    staff_charge_refund,
    staff_email_resend,
    staff_licence_regenerate,
    staff_payment_retry,
    staff_subscription_end_now,
    staff_subscription_extend,
)
from subscriptions.timeline import subscription_timeline

# ---------------------------------------------------------------------------------------------
# Plans


class PlanAdminForm(forms.ModelForm):
    confirm_price_change = forms.BooleanField(
        required=False,
        label=gettext_lazy("Je confirme le changement de prix d'une formule utilisée"),
        help_text=gettext_lazy(
            "Le nouveau prix s'appliquera au prochain renouvellement des abonnements en cours."
        ),
    )

    class Meta:
        model = Plan
        fields = ["code", "name", "tier", "interval", "price_cents", "currency", "features",
                  "refund_window_days", "renewal_refund_window_days", "commitment_months",
                  "is_active"]
        field_classes = {name: WholeNumberField for name in [
            "tier", "price_cents", "refund_window_days", "renewal_refund_window_days",
            "commitment_months"]}

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and "price_cents" in self.changed_data:
            in_use = plan_subscriptions_in_use(self.instance)
            if in_use and not cleaned.get("confirm_price_change"):
                raise ValidationError(
                    _("%(count)s abonnement(s) en cours utilisent cette formule : le nouveau prix "
                      "s'appliquera à leur prochain renouvellement. Cochez la case de "
                      "confirmation pour changer le prix.") % {"count": in_use}
                )
        return cleaned


def plan_subscriptions_in_use(plan) -> int:
    """Running subscriptions on this plan, or that will move to it at renewal."""
    return Subscription.objects.filter(
        Q(plan=plan) | Q(pending_plan=plan), status__in=RUNNING_STATUSES
    ).count()


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    form = PlanAdminForm
    list_display = ["code", "name", "tier", "interval", "price_display", "refund_window_days",
                    "commitment_months", "running_count", "is_active"]
    list_filter = ["interval", "is_active"]
    search_fields = ["code", "name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            running=Count("subscriptions", filter=Q(subscriptions__status__in=RUNNING_STATUSES))
        )

    @admin.display(description=gettext_lazy("Prix HT"), ordering="price_cents")
    def price_display(self, plan):
        return f"{money(plan.price_cents, plan.currency)} HT / {plan.get_interval_display()}"

    @admin.display(description=gettext_lazy("Abonnements en cours"), ordering="running")
    def running_count(self, plan):
        return plan.running

    def get_readonly_fields(self, request, obj=None):
        readonly = []
        if obj is not None:
            # Invoices, events and period math refer to these: they never change.
            readonly += ["code", "interval", "currency"]
        if not request.user.is_superuser:
            readonly.append("price_cents")
        return readonly

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is None or not request.user.is_superuser:
            fields = [f for f in fields if f != "confirm_price_change"]
        return fields

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "price_cents" in form.changed_data:
            in_use = plan_subscriptions_in_use(obj)
            if in_use:
                messages.warning(
                    request,
                    _("Prix modifié : %(count)s abonnement(s) en cours paieront %(price)s HT à "
                      "leur prochain renouvellement.")
                    % {"count": in_use, "price": money(obj.price_cents, obj.currency)},
                )

    def has_delete_permission(self, request, obj=None):
        return False


# ---------------------------------------------------------------------------------------------
# Subscription list: search and filters


class DunningFilter(admin.SimpleListFilter):
    title = gettext_lazy("relance")
    parameter_name = "dunning"

    def lookups(self, request, model_admin):
        return [
            ("past_due", _("En retard de paiement (relances en cours)")),
            ("suspended", _("Suspendu (relances épuisées)")),
            ("none", _("Aucune relance")),
        ]

    def queryset(self, request, queryset):
        if self.value() == "past_due":
            return queryset.filter(status=Status.PAST_DUE)
        if self.value() == "suspended":
            return queryset.filter(status=Status.SUSPENDED)
        if self.value() == "none":
            return queryset.exclude(status__in=[Status.PAST_DUE, Status.SUSPENDED])
        return queryset


MICROSECONDS_PER_DAY = 86_400 * 1_000_000


class LocalDaysLater(Func):
    """``instant`` + N calendar days on the business time zone's wall clock, like
    subscriptions.periods.add_days (PostgreSQL); elsewhere N × 24 hours."""

    output_field = DateTimeField()

    def as_postgresql(self, compiler, connection, **extra_context):
        instant, days = (compiler.compile(e) for e in self.source_expressions)
        zone = str(business_tz())
        sql = (f"((({instant[0]}) AT TIME ZONE %s) + make_interval(days => ({days[0]})))"
               f" AT TIME ZONE %s")
        return sql, (*instant[1], zone, *days[1], zone)

    def as_sql(self, compiler, connection, **extra_context):
        instant, days = self.source_expressions
        # Durations are integer microseconds on the other backends (SQLite).
        fallback = instant + ExpressionWrapper(
            days * Value(MICROSECONDS_PER_DAY), output_field=DurationField()
        )
        return compiler.compile(fallback.resolve_expression(compiler.query))


class RefundWindowFilter(admin.SimpleListFilter):
    """Running subscriptions still inside their plan's refund window (§8): cancelling now
    would end them with a full refund."""

    title = gettext_lazy("fenêtre de remboursement ouverte")
    parameter_name = "refund_window"

    def lookups(self, request, model_admin):
        return [("open", _("Oui")), ("closed", _("Non"))]

    def queryset(self, request, queryset):
        if self.value() not in ("open", "closed"):
            return queryset
        queryset = queryset.alias(
            refund_window_end=LocalDaysLater(F("started_at"), F("plan__refund_window_days"))
        )
        open_ = Q(status__in=RUNNING_STATUSES, refund_window_end__gt=timezone.now())
        return queryset.filter(open_) if self.value() == "open" else queryset.exclude(open_)


class DisputeFilter(admin.SimpleListFilter):
    """Subscriptions with a payment contested at the bank (a chargeback) and not closed."""

    title = gettext_lazy("litige ouvert")
    parameter_name = "dispute"

    def lookups(self, request, model_admin):
        return [("open", _("Oui")), ("none", _("Non"))]

    def queryset(self, request, queryset):
        disputed = Q(pk__in=open_dispute_events().values("subscription"))
        if self.value() == "open":
            return queryset.filter(disputed)
        if self.value() == "none":
            return queryset.exclude(disputed)
        return queryset


# ---------------------------------------------------------------------------------------------
# Staff action forms


class RefundForm(ActionKeyForm):
    charge = forms.TypedChoiceField(label=gettext_lazy("Paiement"), coerce=int)
    amount = forms.CharField(label=gettext_lazy("Montant à rembourser (€ TTC)"), max_length=20)

    def __init__(self, *args, subscription, charges, **kwargs):
        super().__init__(*args, **kwargs)
        self.charges = {charge.pk: charge for charge in charges}
        self.fields["charge"].choices = [
            (charge.pk, _("%(invoice)s — payé %(paid)s, remboursable %(left)s") % {
                "invoice": charge.invoice.number,
                "paid": money(charge.amount_cents, charge.currency),
                "left": money(charge.refundable_cents, charge.currency),
            })
            for charge in charges
        ]

    def clean_amount(self):
        return euros_to_cents(self.cleaned_data["amount"])


class CancelForm(ActionKeyForm):
    reason = forms.ChoiceField(
        label=gettext_lazy("Motif"), required=False,
        choices=[("", "—"), *CancelReason.choices],
    )
    reason_detail = forms.CharField(label=gettext_lazy("Précisions"), required=False,
                                    widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class EndNowForm(ActionKeyForm):
    refund = forms.BooleanField(
        label=gettext_lazy("Rembourser ce qui reste remboursable sur la période en cours"),
        required=False,
    )


class ExtendForm(ActionKeyForm):
    days = WholeNumberField(label=gettext_lazy("Nombre de jours"), min_value=1,
                            max_value=EXTEND_MAX_DAYS)


class ResendEmailForm(ActionKeyForm):
    email = forms.TypedChoiceField(label=gettext_lazy("E-mail à renvoyer"), coerce=int,
                                   widget=forms.RadioSelect)

    def __init__(self, *args, subscription, **kwargs):
        super().__init__(*args, **kwargs)
        self.emails = {email.pk: email for email in subscription.emails.order_by("created_at")}
        self.fields["email"].choices = [
            (email.pk, f"{long_datetime(email.created_at)} — "
                       f"{email.subject} ({email.get_status_display()})")
            for email in self.emails.values()
        ]


class ConfirmForm(ActionKeyForm):
    pass


@dataclass(frozen=True)
class StaffAction:
    name: str
    title: str
    refusal: object  # the predicate of subscriptions.rules: its button shows when it is None


STAFF_ACTIONS = [
    StaffAction("refund", gettext_lazy("Rembourser un paiement"), direct_refusal),
    StaffAction("cancel", gettext_lazy("Résilier à la fin de la période"), cancel_refusal),
    StaffAction("reactivate", gettext_lazy("Réactiver le renouvellement automatique"),
                reactivate_refusal),
    StaffAction("extend", gettext_lazy("Prolonger la période"), extend_refusal),
    StaffAction("retry-payment", gettext_lazy("Relancer le paiement maintenant"),
                pay_now_refusal),
    StaffAction("end-now", gettext_lazy("Terminer maintenant"), end_now_refusal),
    StaffAction("resend-email", gettext_lazy("Renvoyer un e-mail"), direct_refusal),
    StaffAction("regenerate-licence", gettext_lazy("Régénérer la clé de licence"),
                direct_refusal),
]
STAFF_ACTIONS_BY_NAME = {action.name: action for action in STAFF_ACTIONS}


# ---------------------------------------------------------------------------------------------
# Subscriptions


LICENCE_WITHOUT_DASHES = re.compile(r"^[A-Za-z0-9]{25}$")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "customer_email", "customer_number", "plan", "status", "channel",
                    "auto_renew", "current_period_end", "ends_at", "licence_key"]
    list_filter = ["status", "plan", "channel", DunningFilter, RefundWindowFilter, DisputeFilter]
    search_fields = ["customer__email", "customer__customer_number", "licence_key",
                     "invoices__number"]
    list_select_related = ["customer", "plan"]
    readonly_fields = [f.name for f in Subscription._meta.fields]

    @admin.display(description=gettext_lazy("client"), ordering="customer__email")
    def customer_email(self, subscription):
        return subscription.customer.email

    @admin.display(description=gettext_lazy("n° client"), ordering="customer__customer_number")
    def customer_number(self, subscription):
        return subscription.customer.customer_number

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if LICENCE_WITHOUT_DASHES.match(term):
            # A key read aloud or typed without its dashes.
            term = "-".join(term[i:i + 5] for i in range(0, 25, 5)).upper()
        return super().get_search_results(request, queryset, term)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # Change page: the timeline and the action buttons, no save buttons (nothing is editable).

    def render_change_form(self, request, context, add=False, change=False, form_url="",
                           obj=None):
        if obj is not None:
            can_act = self.has_change_permission(request, obj)
            context.update(
                timeline=subscription_timeline(subscription=obj),
                open_disputes=[
                    _("Litige ouvert : %(amount)s contestés le %(date)s (%(reason)s), paiement "
                      "%(charge)s — à traiter chez le prestataire de paiement.") % {
                        "amount": money(event.amount_cents,
                                        event.data.get("currency") or obj.plan.currency),
                        "date": long_date(event.at),
                        "reason": event.data.get("reason_label") or event.data.get("reason")
                        or _("motif non précisé"),
                        "charge": event.data.get("charge", ""),
                    }
                    for event in open_dispute_events().filter(subscription=obj)
                ],
                is_direct=obj.channel == Channel.DIRECT,
                staff_actions=[
                    (action.title, self._action_url(obj, action.name))
                    for action in STAFF_ACTIONS
                    if can_act and action.refusal(obj, now=timezone.now()) is None
                ],
                show_save=False,
                show_save_and_continue=False,
                show_save_and_add_another=False,
                show_delete_link=False,
            )
        return super().render_change_form(request, context, add=add, change=change,
                                          form_url=form_url, obj=obj)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<path:object_id>/actions/<slug:action>/",
                 self.admin_site.admin_view(self.staff_action_view),
                 name="{}_{}_staff_action".format(*info)),
            *super().get_urls(),
        ]

    def _action_url(self, subscription, action):
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_staff_action",
                       args=[subscription.pk, action])

    def _change_url(self, subscription):
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                       args=[subscription.pk])

    def staff_action_view(self, request, object_id, action):
        spec = STAFF_ACTIONS_BY_NAME.get(action)
        subscription = self.get_object(request, unquote(object_id))
        if spec is None or subscription is None:
            raise Http404
        if not self.has_change_permission(request, subscription):
            raise PermissionDenied
        change_url = self._change_url(subscription)
        if direct_refusal(subscription) is not None:
            messages.error(
                request,
                _("Cet abonnement a été souscrit via %(channel)s : il se gère auprès de lui, "
                  "aucune action n'est possible ici.")
                % {"channel": subscription.get_channel_display()},
            )
            return redirect(change_url)
        now = timezone.now()
        handler = getattr(self, f"_action_{action.replace('-', '_')}")
        data = request.POST if request.method == "POST" else None
        form, context, perform = handler(request, subscription, data, now)
        if request.method == "POST":
            outcome = perform_once(key=form.posted_action_key, user=request.user, now=now,
                                   perform=lambda: _validated_perform(form, perform))
            messages.add_message(request, outcome.level, outcome.message)
            if not outcome.refused:
                return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            **context,
            "opts": self.opts,
            "original": subscription,
            "subscription": subscription,
            "title": spec.title,
            "action": action,
            "form": form,
            "change_url": change_url,
        }
        return TemplateResponse(
            request,
            f"admin/subscriptions/subscription/actions/{action.replace('-', '_')}.html",
            context,
        )

    # One handler per action: (form, what the confirmation page states, what POST does).

    def _action_refund(self, request, subscription, data, now):
        charges = [c for c in succeeded_charges_with_refundable(subscription=subscription)
                   if c.refundable_cents > 0]
        form = RefundForm(data, subscription=subscription, charges=charges,
                          initial={"charge": request.GET.get("charge")})

        def perform(cleaned):
            refund = staff_charge_refund(
                subscription=subscription, charge=form.charges[cleaned["charge"]],
                amount_cents=cleaned["amount"], staff_user=request.user, now=now,
            )
            return _("Remboursement de %(amount)s enregistré : il sera versé sur la carte du "
                     "client.") % {"amount": money(refund.amount_cents, refund.currency)}

        return form, {"charges": charges}, perform

    def _action_cancel(self, request, subscription, data, now):
        already = cancel_refusal(subscription, now=now) is not None
        quote = None if already else cancellation_quote(subscription=subscription, now=now)

        def perform(cleaned):
            _subscription, terms = subscription_cancel(
                subscription=subscription, reason=cleaned["reason"],
                reason_detail=cleaned["reason_detail"], actor=Actor.STAFF,
                actor_user=request.user, now=now,
            )
            if terms is None:
                raise StaffActionError(_("Cet abonnement est déjà résilié."))
            return _("Abonnement résilié.")

        return CancelForm(data), {"already": already, "quote": quote}, perform

    def _action_reactivate(self, request, subscription, data, now):
        def perform(cleaned):
            refusal = reactivate_refusal(subscription, now=now)
            if refusal is not None:
                raise StaffActionError(refusal_message(refusal, subscription))
            subscription_auto_renew_reactivate(subscription=subscription, actor=Actor.STAFF,
                                               actor_user=request.user, now=now)
            return _("Renouvellement automatique réactivé.")

        context = {"refunded": cancellation_refunded(subscription=subscription)}
        return ConfirmForm(data), context, perform

    def _action_extend(self, request, subscription, data, now):
        def perform(cleaned):
            extended = staff_subscription_extend(subscription=subscription,
                                                 days=cleaned["days"],
                                                 staff_user=request.user, now=now)
            return _("Période prolongée jusqu'au %(date)s.") % {
                "date": long_datetime(extended.current_period_end)
            }

        return ExtendForm(data), {}, perform

    def _action_retry_payment(self, request, subscription, data, now):
        invoice = open_renewal_invoice(subscription)

        def perform(cleaned):
            charge = staff_payment_retry(subscription=subscription, staff_user=request.user,
                                         now=now)
            if charge.status == Charge.Status.SUCCEEDED:
                return _("Paiement réussi : l'abonnement est de nouveau actif.")
            if charge.status == Charge.Status.FAILED:
                return messages.WARNING, _(
                    "Paiement refusé (%(code)s) : la tentative est enregistrée, rien d'autre n'a "
                    "changé."
                ) % {"code": charge.failure_code}
            if charge.status == Charge.Status.REQUIRES_ACTION:
                return messages.WARNING, _(
                    "La banque demande l'authentification du client (3-D Secure) : il doit "
                    "confirmer le paiement depuis son compte (« Confirmer votre paiement »)."
                )
            return messages.WARNING, _(
                "Le résultat du paiement est inconnu : il sera vérifié auprès du prestataire."
            )

        context = {"invoice": invoice, "card": default_card(customer=subscription.customer)}
        return ConfirmForm(data), context, perform

    def _action_end_now(self, request, subscription, data, now):
        def perform(cleaned):
            refunded = staff_subscription_end_now(subscription=subscription,
                                                  refund=cleaned["refund"],
                                                  staff_user=request.user, now=now)
            if refunded:
                return _("Abonnement terminé ; %(amount)s remboursés.") % {
                    "amount": money(refunded, subscription.plan.currency)}
            return _("Abonnement terminé, sans remboursement.")

        context = {"refundable_cents": end_now_refundable_cents(subscription=subscription)}
        return EndNowForm(data), context, perform

    def _action_resend_email(self, request, subscription, data, now):
        form = ResendEmailForm(data, subscription=subscription)

        def perform(cleaned):
            copy = staff_email_resend(subscription=subscription,
                                      email=form.emails[cleaned["email"]],
                                      staff_user=request.user, now=now)
            return _("E-mail « %(subject)s » renvoyé à %(recipient)s.") % {
                "subject": copy.subject, "recipient": copy.recipient}

        return form, {}, perform

    def _action_regenerate_licence(self, request, subscription, data, now):
        def perform(cleaned):
            updated = staff_licence_regenerate(subscription=subscription,
                                               staff_user=request.user, now=now)
            return _("Nouvelle clé de licence : %(key)s.") % {"key": updated.licence_key}

        return ConfirmForm(data), {}, perform


def _validated_perform(form, perform):
    if not form.is_valid():
        raise ActionRefused(_form_errors(form))
    try:
        result = perform(form.cleaned_data)
    except (StaffActionError, CancellationError) as error:
        raise ActionRefused(str(error)) from error
    return result if isinstance(result, tuple) else (messages.SUCCESS, result)


def _form_errors(form) -> str:
    errors = []
    for name, field_errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else ""
        errors.extend(f"{label} : {error}" if label else error for error in field_errors)
    return " ".join(errors)
