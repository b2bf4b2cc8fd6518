"""Numbers on issue, the collection state with the invoice, truthful charge outcomes.

Issued invoices keep their numbers. An invoice that was voided after being numbered gets the
cancelling credit note it should have had (DESIGN §14). The dunning columns move from the
subscription to its open renewal invoice (DESIGN §6)."""

from django.db import migrations, models
from django.utils import timezone


def forwards(apps, schema_editor):
    Invoice = apps.get_model("billing", "Invoice")
    Charge = apps.get_model("billing", "Charge")
    CreditNote = apps.get_model("billing", "CreditNote")
    DocumentSequence = apps.get_model("billing", "DocumentSequence")
    Subscription = apps.get_model("subscriptions", "Subscription")

    Invoice.objects.update(created_at=models.F("issued_at"))
    Charge.objects.filter(status="failed").exclude(failure_code="not_attempted").update(
        failure_kind="decline"
    )
    Charge.objects.filter(status="failed", failure_code="not_attempted").update(
        failure_kind="not_sent"
    )
    now = timezone.now()
    for invoice in Invoice.objects.filter(status="void").exclude(number=None).order_by("pk"):
        if CreditNote.objects.filter(invoice=invoice, refund=None).exists():
            continue
        year = timezone.localtime(now).year
        sequence, _created = DocumentSequence.objects.get_or_create(prefix="A", year=year)
        sequence.last_value += 1
        sequence.save(update_fields=["last_value"])
        CreditNote.objects.create(
            number=f"A{year}-{sequence.last_value:06d}", invoice=invoice, refund=None,
            net_cents=invoice.net_cents, vat_cents=invoice.vat_cents,
            total_cents=invoice.total_cents, issued_at=now,
        )
    for subscription in Subscription.objects.exclude(dunning_started_at=None):
        Invoice.objects.filter(
            subscription=subscription, kind="renewal", status="open"
        ).update(
            dunning_started_at=subscription.dunning_started_at,
            next_retry_at=subscription.next_retry_at,
            declined_attempts=models.Subquery(
                Charge.objects.filter(
                    invoice=models.OuterRef("pk"), status="failed", initiated_by="system",
                    failure_kind="decline",
                ).values("invoice").annotate(n=models.Count("pk")).values("n")[:1]
            ),
            last_failure_kind="decline",
        )


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0004_invoice_kind_proration"),
        ("subscriptions", "0004_staff_event_kinds"),
    ]

    operations = [
        migrations.AlterField(
            model_name="invoice",
            name="number",
            field=models.CharField(blank=True, max_length=16, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name="invoice",
            name="status",
            field=models.CharField(
                choices=[("draft", "Brouillon"), ("open", "À payer"), ("paid", "Payée"),
                         ("void", "Annulée")],
                default="draft", max_length=5,
            ),
        ),
        migrations.AlterField(
            model_name="invoice",
            name="issued_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="invoice",
            name="created_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name="invoice",
            name="declined_attempts",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="invoice",
            name="dunning_started_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="invoice",
            name="next_retry_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="invoice",
            name="last_failure_kind",
            field=models.CharField(blank=True, max_length=24),
        ),
        migrations.AlterModelOptions(
            name="invoice",
            options={"ordering": ["-created_at", "-id"], "verbose_name": "facture"},
        ),
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(fields=["next_retry_at"], name="invoice_retry_scan"),
        ),
        migrations.AddField(
            model_name="charge",
            name="failure_kind",
            field=models.CharField(blank=True, max_length=24),
        ),
        migrations.AddField(
            model_name="charge",
            name="next_attempt_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="charge",
            name="provider_errors",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="charge",
            name="last_error",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddIndex(
            model_name="charge",
            index=models.Index(fields=["status", "next_attempt_at"], name="charge_resend_scan"),
        ),
        migrations.AlterField(
            model_name="creditnote",
            name="refund",
            field=models.OneToOneField(
                blank=True, null=True, on_delete=models.deletion.PROTECT,
                related_name="credit_note", to="billing.refund",
            ),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
