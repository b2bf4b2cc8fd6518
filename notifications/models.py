import uuid
from email.utils import parseaddr

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


def new_message_id() -> str:
    """A Message-ID of our own domain, unique to one outbox row (RFC 5322 §3.6.4)."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "localhost"
    return f"<outbox-{uuid.uuid4().hex}@{domain}>"


class OutboxEmail(models.Model):
    """One email per occasion (DESIGN §10): the unique occasion key means a reminder or a
    confirmation is queued at most once, however often the code that queues it runs."""

    class Status(models.TextChoices):
        PENDING = "pending", _("En attente")
        SENDING = "sending", _("Envoi en cours")
        SENT = "sent", _("Envoyé")
        FAILED = "failed", _("Échec")

    occasion_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=40)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="emails",
    )
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="emails",
    )
    recipient = models.EmailField()
    language = models.CharField(max_length=5)
    subject = models.CharField(max_length=200)
    body_text = models.TextField()
    body_html = models.TextField()
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.PENDING)
    # Sent as the Message-ID header on every delivery of this row, so a delivery repeated
    # after a crash is recognisable as the same message.
    message_id = models.CharField(_("Message-ID"), max_length=200, unique=True,
                                  default=new_message_id)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    next_attempt_at = models.DateTimeField(_("prochain essai"), null=True, blank=True)
    sending_started_at = models.DateTimeField(_("début du dernier envoi"), null=True, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("e-mail")
        indexes = [
            # The outbox scan (notifications.selectors.emails_due) reads only these rows.
            models.Index(fields=["status", "next_attempt_at"], name="outbox_email_due",
                         condition=models.Q(status__in=["pending", "sending"])),
        ]

    def __str__(self):
        return f"{self.kind} → {self.recipient}"
