from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("subscriptions", "0004_staff_event_kinds"),
        ("billing", "0006_invoice_created_at_required"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="subscription", name="sub_retry_scan"),
        migrations.RemoveField(model_name="subscription", name="dunning_started_at"),
        migrations.RemoveField(model_name="subscription", name="next_retry_at"),
    ]
