from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from formats.dates import long_datetime


class SupportRequest(models.Model):
    """A customer's request to support ("Contacter le support", DESIGN §11) and its outcome.

    The reference ("S2026-000123") is the year of creation and the row id: unique, readable,
    not gapless per year."""

    class Category(models.TextChoices):
        REFUND = "refund", _("Demande de remboursement")
        BILLING = "billing", _("Facturation")
        CANCELLATION = "cancellation", _("Résiliation")
        TECHNICAL = "technical", _("Problème technique")
        OTHER = "other", _("Autre")

    class Status(models.TextChoices):
        OPEN = "open", _("Ouverte")
        AWAITING_CUSTOMER = "awaiting_customer", _("En attente de votre réponse")
        RESOLVED = "resolved", _("Résolue")
        CLOSED = "closed", _("Fermée")

    class RefundDecision(models.TextChoices):
        APPROVED = "approved", _("Remboursement accordé")
        REFUSED = "refused", _("Remboursement refusé")

    reference = models.CharField(_("référence"), max_length=40, unique=True)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="support_requests",
        verbose_name=_("client"),
    )
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="support_requests",
        verbose_name=_("abonnement"),
    )
    subject = models.CharField(_("objet"), max_length=200)
    category = models.CharField(_("catégorie"), max_length=12, choices=Category.choices)
    status = models.CharField(
        _("statut"), max_length=17, choices=Status.choices, default=Status.OPEN
    )
    created_at = models.DateTimeField(_("créée le"))
    last_message_at = models.DateTimeField(_("dernier message le"))
    refund_decision = models.CharField(
        _("décision de remboursement"), max_length=8, choices=RefundDecision.choices, blank=True
    )
    refund = models.ForeignKey(
        "billing.Refund",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="support_requests",
        verbose_name=_("remboursement"),
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("décidé par"),
    )
    decided_at = models.DateTimeField(_("décidé le"), null=True, blank=True)

    class Meta:
        ordering = ["-last_message_at", "-id"]
        verbose_name = _("demande de support")
        verbose_name_plural = _("demandes de support")

    def __str__(self):
        return f"{self.reference} — {self.subject}"

    @property
    def accepts_replies(self) -> bool:
        return self.status != self.Status.CLOSED

    @property
    def refund_pending(self) -> bool:
        return (
            self.category == self.Category.REFUND
            and self.subscription_id is not None
            and not self.refund_decision
        )


class SupportMessage(models.Model):
    """One message of a request's thread; append-only."""

    class Author(models.TextChoices):
        CUSTOMER = "customer", _("client")
        STAFF = "staff", _("support")

    request = models.ForeignKey(
        SupportRequest, on_delete=models.CASCADE, related_name="messages",
        verbose_name=_("demande"),
    )
    author = models.CharField(_("auteur"), max_length=8, choices=Author.choices)
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("écrit par"),
    )
    body = models.TextField(_("message"))
    created_at = models.DateTimeField(_("envoyé le"))

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("message de support")
        verbose_name_plural = _("messages de support")

    def __str__(self):
        return f"{self.get_author_display()} · {long_datetime(self.created_at)}"
