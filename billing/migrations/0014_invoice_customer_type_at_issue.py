"""The customer as at issue time on the invoices issued before it was copied there.

What each customer was when those invoices were issued is not known any more: their profile
as it is now is the best available record, so that is what is copied (once: an invoice that
already has a name is left alone). From now on billing.services copies it when it issues."""

from django.db import migrations, models


def fill_customer_at_issue(apps, schema_editor):
    Invoice = apps.get_model("billing", "Invoice")
    issued = Invoice.objects.filter(number__isnull=False, customer_name="").select_related(
        "customer")
    for invoice in issued.iterator(chunk_size=500):
        customer = invoice.customer
        business = customer.customer_type == "business"
        invoice.customer_type = customer.customer_type
        invoice.customer_name = (f"{customer.first_name} {customer.last_name}".strip()
                                 or customer.email)
        invoice.customer_company = customer.company_name if business else ""
        invoice.customer_address = "\n".join(line for line in (
            customer.address_line1, customer.address_line2,
            f"{customer.postal_code} {customer.city}".strip(),
        ) if line)
        invoice.customer_siren = customer.siren if business else ""
        invoice.customer_vat_number = customer.vat_number if business else ""
        invoice.save(update_fields=["customer_type", "customer_name", "customer_company",
                                    "customer_address", "customer_siren",
                                    "customer_vat_number"])


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0004_billing_details"),
        ("billing", "0013_simulated_card_country"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoice",
            name="customer_type",
            field=models.CharField(blank=True, choices=[("individual", "Particulier"), ("business", "Professionnel")], db_default="", max_length=10, verbose_name="type de client"),
        ),
        migrations.RunPython(fill_customer_at_issue, migrations.RunPython.noop),
    ]
