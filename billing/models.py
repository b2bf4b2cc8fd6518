from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import CustomerType


class PaymentMethod(models.Model):
    """A saved card: the provider's token and what may be shown. Never the card number."""

    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payment_methods"
    )
    provider_token = models.CharField(max_length=64, unique=True)
    # The customer at the provider the card is attached to (Stripe: cus_…); "" for the
    # simulated provider.
    provider_customer_reference = models.CharField(max_length=64, blank=True)
    brand = models.CharField(max_length=20)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    # The issuing country the provider reports (ISO 3166), "" when it does not.
    country = models.CharField(max_length=2, blank=True, db_default="")
    is_default = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"], condition=Q(is_default=True), name="one_default_card"
            )
        ]
        verbose_name = _("carte")

    def __str__(self):
        return f"{self.brand} •••• {self.last4} ({self.exp_month:02d}/{self.exp_year})"


class DocumentSequence(models.Model):
    """Gapless numbering of invoices and credit notes, one counter per prefix and year."""

    prefix = models.CharField(max_length=2)
    year = models.PositiveSmallIntegerField()
    last_value = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prefix", "year"], name="one_sequence_per_year")
        ]

    def __str__(self):
        return f"{self.prefix}{self.year}: {self.last_value}"


class Invoice(models.Model):
    """A renewal invoice is issued (numbered) at its period start; a first payment's or a plan
    change's invoice stays an unnumbered draft until its charge succeeds (DESIGN §14)."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Brouillon")
        OPEN = "open", _("À payer")
        PAID = "paid", _("Payée")
        VOID = "void", _("Annulée")

    class Kind(models.TextChoices):
        INITIAL = "initial", _("Souscription")
        RENEWAL = "renewal", _("Renouvellement")
        PRORATION = "proration", _("Prorata")

    number = models.CharField(max_length=16, unique=True, null=True, blank=True)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="invoices"
    )
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invoices",
    )
    plan = models.ForeignKey("subscriptions.Plan", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=5, choices=Status.choices, default=Status.DRAFT)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    currency = models.CharField(max_length=3)
    vat_rate = models.DecimalField(max_digits=4, decimal_places=2)
    billing_country = models.CharField(max_length=2)
    net_cents = models.IntegerField()
    vat_cents = models.IntegerField()
    total_cents = models.IntegerField()
    created_at = models.DateTimeField()
    issued_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # Collection (DESIGN §6, billing/dunning.py): declines counted, when dunning began, when
    # the next scheduled retry is due and what the last failure was.
    declined_attempts = models.PositiveSmallIntegerField(default=0)
    dunning_started_at = models.DateTimeField(null=True, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    last_failure_kind = models.CharField(max_length=24, blank=True)
    # Scheduled attempts the bank answered "authentication required" (DESIGN §6): not
    # declines, but they take their place in the retry schedule (billing/dunning.py).
    authentication_requests = models.PositiveSmallIntegerField(default=0)
    # An EU business outside France with a valid VAT number: 0 % VAT, "Autoliquidation"
    # (DESIGN §3), decided with the rate when the invoice is created.
    # (Database defaults on the columns below: a renewal worker of the previous release
    # inserting invoices while this one migrates leaves them empty rather than failing.)
    reverse_charge = models.BooleanField(_("autoliquidation"), default=False, db_default=False)
    # The customer as they were when the invoice was issued (DESIGN §14): a later change of
    # their profile never alters an issued invoice. ``customer_address`` holds the address's
    # lines (street, complement, "postcode city"); the country is ``billing_country``. A
    # professional's invoice is a Factur-X (billing.facturx).
    customer_type = models.CharField(_("type de client"), max_length=10,
                                     choices=CustomerType.choices, blank=True, db_default="")
    customer_name = models.CharField(_("nom du client"), max_length=300, blank=True, db_default="")
    customer_company = models.CharField(_("raison sociale"), max_length=200,
                                        blank=True, db_default="")
    customer_address = models.TextField(_("adresse de facturation"), blank=True, db_default="")
    customer_siren = models.CharField(_("SIREN / SIRET"), max_length=14, blank=True, db_default="")
    customer_vat_number = models.CharField(_("numéro de TVA du client"), max_length=16,
                                           blank=True, db_default="")
    # Evidence of the customer's location (DESIGN §14): the billing country above, and the
    # issuing country of the card that paid, when the provider gives it.
    card_country = models.CharField(_("pays d'émission de la carte"), max_length=2,
                                    blank=True, db_default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["next_retry_at"], name="invoice_retry_scan")]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start"],
                condition=Q(kind="renewal"),
                name="one_renewal_invoice_per_period",
            )
        ]
        verbose_name = _("facture")

    def __str__(self):
        return self.number or _("brouillon n° %(pk)s") % {"pk": self.pk}


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    description = models.CharField(max_length=200)
    net_cents = models.IntegerField()
    vat_cents = models.IntegerField()
    total_cents = models.IntegerField()

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.description


class Charge(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("En cours")
        SUCCEEDED = "succeeded", _("Réussi")
        FAILED = "failed", _("Refusé")
        UNKNOWN = "unknown", _("Résultat inconnu")
        # The bank asks the cardholder to authenticate (3-D Secure): nothing charged yet; the
        # customer completes it with ``client_secret`` and the provider's ``provider_reference``
        # then settles, success or refusal.
        REQUIRES_ACTION = "requires_action", _("Authentification requise")

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="charges")
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="charges"
    )
    payment_method = models.ForeignKey(
        PaymentMethod, on_delete=models.PROTECT, null=True, related_name="charges"
    )
    attempt = models.PositiveSmallIntegerField(default=1)
    initiated_by = models.CharField(
        max_length=8,
        choices=[("customer", _("client")), ("staff", _("support")), ("system", _("système"))],
        default="system",
    )
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.PENDING)
    idempotency_key = models.CharField(max_length=80, unique=True)
    provider_reference = models.CharField(max_length=64, blank=True)
    # What the provider's script needs to run the authentication challenge (requires_action).
    client_secret = models.CharField(max_length=200, blank=True)
    failure_code = models.CharField(max_length=40, blank=True)
    failure_kind = models.CharField(max_length=24, blank=True)  # billing.dunning.FailureKind
    failure_message = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)
    # Sent again under the same key (provider error, no record, unknown outcome) at this time.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    provider_errors = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "attempt"], name="one_charge_per_attempt")
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="charge_reconcile_scan"),
            models.Index(fields=["status", "next_attempt_at"], name="charge_resend_scan"),
        ]
        verbose_name = _("paiement")

    def __str__(self):
        return f"{self.idempotency_key} ({self.status})"


class Refund(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("En cours")
        SUCCEEDED = "succeeded", _("Effectué")
        FAILED = "failed", _("Échoué")

    class Reason(models.TextChoices):
        CANCELLATION = "cancellation", _("Résiliation")
        STAFF = "staff", _("Geste du support")
        UNCOLLECTED = "uncollected", _("Paiement reçu pour une facture annulée")
        WITHDRAWAL = "withdrawal", _("Rétractation")

    charge = models.ForeignKey(Charge, on_delete=models.PROTECT, related_name="refunds")
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=12, choices=Reason.choices)
    idempotency_key = models.CharField(max_length=80, unique=True)
    provider_reference = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("remboursement")

    def __str__(self):
        return f"{self.idempotency_key} ({self.status})"


class CreditNote(models.Model):
    """The accounting record of a refund paid (French "avoir"), or of an issued invoice that
    will not be collected (``refund`` empty): an issued invoice is never voided silently."""

    number = models.CharField(max_length=16, unique=True)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    refund = models.OneToOneField(
        Refund, on_delete=models.PROTECT, null=True, blank=True, related_name="credit_note"
    )
    net_cents = models.IntegerField()
    vat_cents = models.IntegerField()
    total_cents = models.IntegerField()
    issued_at = models.DateTimeField()

    class Meta:
        ordering = ["issued_at", "id"]
        verbose_name = _("avoir")

    def __str__(self):
        return self.number


class SimulatedProviderCard(models.Model):
    """The simulated provider's own vault: what a token stands for (no card number)."""

    token = models.CharField(max_length=64, unique=True)
    behaviour = models.CharField(max_length=24)
    brand = models.CharField(max_length=20)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField(null=True)
    exp_year = models.PositiveSmallIntegerField(null=True)
    # The issuing country it reports for the card (simulated.COUNTRY_CARDS), or "".
    country = models.CharField(max_length=2, blank=True, db_default="")

    def __str__(self):
        return self.token


class SimulatedProviderOperation(models.Model):
    """The simulated provider's ledger: one row per idempotency key, so a key never moves
    money twice."""

    idempotency_key = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=6)
    reference = models.CharField(max_length=64, unique=True)
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=15)  # success, declined, requires_action
    # A requires_action operation's secret: its challenge page completes it (3-D Secure).
    client_secret = models.CharField(max_length=80, blank=True)
    failure_code = models.CharField(max_length=40, blank=True)
    charge_reference = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.idempotency_key


class ProviderEvent(models.Model):
    """A notification the payment provider sent us (a Stripe webhook, DESIGN §13), stored once
    per provider event id before anything is done with it, then processed by a task; until
    processed it is retried by a scan (``next_attempt_at``), so no event is ever lost."""

    class Outcome(models.TextChoices):
        PROCESSED = "processed", _("Traité")
        IGNORED = "ignored", _("Ignoré")

    provider = models.CharField(_("prestataire"), max_length=20)
    event_id = models.CharField(_("identifiant chez le prestataire"), max_length=255)
    type = models.CharField(_("type"), max_length=100)
    payload = models.JSONField(_("contenu"))
    received_at = models.DateTimeField(_("reçu le"))
    processed_at = models.DateTimeField(_("traité le"), null=True, blank=True)
    outcome = models.CharField(_("résultat"), max_length=9, choices=Outcome.choices,
                               blank=True)
    note = models.CharField(_("détail"), max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(_("essais en erreur"), default=0)
    error = models.TextField(_("dernière erreur"), blank=True)
    next_attempt_at = models.DateTimeField(_("prochain essai"), null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"],
                                    name="one_provider_event_per_id")
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="provider_event_due",
                         condition=Q(processed_at__isnull=True)),
        ]
        verbose_name = _("notification du prestataire")
        verbose_name_plural = _("notifications du prestataire")

    def __str__(self):
        return f"{self.provider} {self.event_id} ({self.type})"


class VatRate(models.Model):
    """A change of a member state's standard VAT rate, from a day, that superusers added in
    admin after ``billing.vat_rates`` was written (DESIGN §3; billing.vat reads both). Only a
    coming day may be added; nothing is edited or deleted once taxed with."""

    country = models.CharField(_("pays"), max_length=2)
    rate = models.DecimalField(_("taux (%)"), max_digits=4, decimal_places=2)
    valid_from = models.DateField(_("applicable à partir du"))

    class Meta:
        ordering = ["country", "-valid_from"]
        constraints = [models.UniqueConstraint(fields=["country", "valid_from"],
                                               name="one_vat_rate_per_country_and_day")]
        verbose_name = _("taux de TVA")
        verbose_name_plural = _("taux de TVA")

    def __str__(self):
        return f"{self.country} {self.rate} % ({self.valid_from})"
