from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from formats.dates import long_datetime


class Interval(models.TextChoices):
    MONTH = "month", _("mensuel")
    YEAR = "year", _("annuel")


class Plan(models.Model):
    code = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    tier = models.PositiveSmallIntegerField(
        help_text=_("Rang : un rang supérieur est une montée en gamme.")
    )
    interval = models.CharField(max_length=5, choices=Interval.choices)
    price_cents = models.PositiveIntegerField(help_text=_("Prix HT en centimes."))
    currency = models.CharField(max_length=3, default="EUR")
    features = models.JSONField(default=list, blank=True)
    refund_window_days = models.PositiveSmallIntegerField(default=14)
    renewal_refund_window_days = models.PositiveSmallIntegerField(default=0)
    commitment_months = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["interval", "tier", "price_cents"]
        verbose_name = _("formule")

    def __str__(self):
        return f"{self.name} ({self.get_interval_display()})"


class Status(models.TextChoices):
    ACTIVE = "active", _("Actif")
    PAST_DUE = "past_due", _("Paiement en retard")
    SUSPENDED = "suspended", _("Suspendu")
    ENDED = "ended", _("Terminé")


class EndReason(models.TextChoices):
    EXPIRED = "expired", _("expiré")
    REFUNDED = "refunded", _("remboursé")
    UNPAID = "unpaid", _("impayé")
    TERMINATED_BY_SUPPORT = "terminated_by_support", _("terminé par le support")
    WITHDRAWN = "withdrawn", _("rétractation")


class Channel(models.TextChoices):
    DIRECT = "direct", _("Achat direct")
    APP_STORE = "app_store", _("App Store")
    GOOGLE_PLAY = "google_play", _("Google Play")
    RESELLER = "reseller", _("Revendeur")
    ISP = "isp", _("Fournisseur d'accès à Internet")


class CancelReason(models.TextChoices):
    TOO_EXPENSIVE = "too_expensive", _("Trop cher")
    NOT_USED = "not_used", _("Je ne l'utilise pas assez")
    MISSING_FEATURE = "missing_feature", _("Il manque une fonctionnalité")
    TECHNICAL = "technical", _("Problèmes techniques")
    SWITCHING = "switching", _("Je passe à un autre produit")
    OTHER = "other", _("Autre raison")


RUNNING_STATUSES = (Status.ACTIVE, Status.PAST_DUE, Status.SUSPENDED)


class Subscription(models.Model):
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="subscriptions"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    end_reason = models.CharField(max_length=24, choices=EndReason.choices, blank=True)
    channel = models.CharField(max_length=12, choices=Channel.choices, default=Channel.DIRECT)
    started_at = models.DateTimeField()
    billing_anchor = models.DateTimeField()
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    auto_renew = models.BooleanField(default=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=20, choices=CancelReason.choices, blank=True)
    cancel_reason_detail = models.TextField(blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    pending_plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    licence_key = models.CharField(max_length=29, unique=True)
    licence_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("abonnement")
        indexes = [
            models.Index(fields=["status", "current_period_end"], name="sub_renewal_scan"),
            models.Index(fields=["ends_at"], name="sub_expiry_scan"),
        ]

    def __str__(self):
        return f"{self.plan.name} — {self.customer}"

    @property
    def is_running(self):
        return self.status in RUNNING_STATUSES

    @property
    def reference(self) -> str:
        """The contract's reference for the customer (with their customer number), e.g.
        ``S00000042``: readable, stable, derived from the row's id."""
        return f"{REFERENCE_PREFIX}{self.pk:08d}" if self.pk else ""


REFERENCE_PREFIX = "S"


class Actor(models.TextChoices):
    CUSTOMER = "customer", _("client")
    STAFF = "staff", _("support")
    SYSTEM = "system", _("système")


class SubscriptionEvent(models.Model):
    """Append-only history of a subscription (DESIGN §2)."""

    class Kind(models.TextChoices):
        SUBSCRIBED = "subscribed", _("Souscription")
        RENEWED = "renewed", _("Renouvellement payé")
        PAYMENT_FAILED = "payment_failed", _("Échec de paiement")
        AUTHENTICATION_REQUIRED = "authentication_required", _("Authentification requise")
        SUSPENDED = "suspended", _("Suspension")
        REACTIVATED = "reactivated", _("Réactivation après paiement")
        CANCELLED = "cancelled", _("Résiliation")
        AUTO_RENEW_REACTIVATED = "auto_renew_reactivated", _("Renouvellement réactivé")
        ENDED = "ended", _("Fin de l'abonnement")
        REFUND_REQUESTED = "refund_requested", _("Remboursement demandé")
        PLAN_CHANGED = "plan_changed", _("Changement de formule")
        PLAN_CHANGE_SCHEDULED = "plan_change_scheduled", _("Changement de formule programmé")
        PLAN_CHANGE_WITHDRAWN = "plan_change_withdrawn", _("Changement de formule annulé")
        STAFF_REFUND = "staff_refund", _("Remboursement par le support")
        PERIOD_EXTENDED = "period_extended", _("Période prolongée")
        PAYMENT_RETRIED = "payment_retried", _("Paiement relancé par le support")
        EMAIL_RESENT = "email_resent", _("E-mail renvoyé")
        LICENCE_REGENERATED = "licence_regenerated", _("Clé de licence régénérée")
        # A chargeback: the cardholder contested a payment with their bank (DESIGN §13).
        DISPUTE_OPENED = "dispute_opened", _("Litige ouvert (paiement contesté)")
        DISPUTE_CLOSED = "dispute_closed", _("Litige clos")
        # The customer's withdrawal statement (DESIGN §8), received at ``at``.
        WITHDRAWN = "withdrawn", _("Rétractation")

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    actor = models.CharField(max_length=8, choices=Actor.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField()
    amount_cents = models.IntegerField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("événement")

    def __str__(self):
        return f"{self.get_kind_display()} ({long_datetime(self.at)})"
