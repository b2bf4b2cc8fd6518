# Retries over a long horizon, a sending status and a stable Message-ID (DESIGN §10).
# Existing pending emails get no next_attempt_at: they are due at once.

from django.db import migrations, models

import notifications.models


def give_each_email_a_message_id(apps, schema_editor):
    OutboxEmail = apps.get_model("notifications", "OutboxEmail")
    for pk in OutboxEmail.objects.filter(message_id__isnull=True).values_list("pk", flat=True):
        OutboxEmail.objects.filter(pk=pk).update(
            message_id=notifications.models.new_message_id()
        )


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxemail",
            name="message_id",
            field=models.CharField(max_length=200, null=True, verbose_name="Message-ID"),
        ),
        migrations.RunPython(give_each_email_a_message_id, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="outboxemail",
            name="message_id",
            field=models.CharField(default=notifications.models.new_message_id, max_length=200,
                                   unique=True, verbose_name="Message-ID"),
        ),
        migrations.AddField(
            model_name="outboxemail",
            name="next_attempt_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="prochain essai"),
        ),
        migrations.AddField(
            model_name="outboxemail",
            name="sending_started_at",
            field=models.DateTimeField(blank=True, null=True,
                                       verbose_name="début du dernier envoi"),
        ),
        migrations.AlterField(
            model_name="outboxemail",
            name="status",
            field=models.CharField(
                choices=[("pending", "En attente"), ("sending", "Envoi en cours"),
                         ("sent", "Envoyé"), ("failed", "Échec")],
                default="pending", max_length=7,
            ),
        ),
        migrations.AddIndex(
            model_name="outboxemail",
            index=models.Index(condition=models.Q(("status__in", ["pending", "sending"])),
                               fields=["status", "next_attempt_at"], name="outbox_email_due"),
        ),
    ]
