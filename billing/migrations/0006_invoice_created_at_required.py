from django.db import migrations, models


class Migration(migrations.Migration):
    """Separate from 0005: PostgreSQL refuses to alter a table with pending trigger events
    from the data migration's inserts."""

    dependencies = [("billing", "0005_invoice_numbering_and_collection")]

    operations = [
        migrations.AlterField(
            model_name="invoice", name="created_at", field=models.DateTimeField(),
        ),
    ]
