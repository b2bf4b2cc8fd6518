"""The provider's notifications (webhooks, DESIGN §13); the "Support" group (accounts 0002) may
view them (the admin is read-only for everyone)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations, models

SUPPORT_GROUP = "Support"


def _permission(apps):
    app_config = apps.get_app_config("billing")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    return apps.get_model("auth", "Permission").objects.get(
        content_type__app_label="billing", codename="view_providerevent")


def grant(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name=SUPPORT_GROUP).first()
    if group is not None:
        group.permissions.add(_permission(apps))


def revoke(apps, schema_editor):
    group = apps.get_model("auth", "Group").objects.filter(name=SUPPORT_GROUP).first()
    if group is not None:
        group.permissions.remove(_permission(apps))


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0007_card_setup'),
        ('accounts', '0002_support_group'),
    ]

    operations = [
        migrations.CreateModel(
            name='ProviderEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('provider', models.CharField(max_length=20, verbose_name='prestataire')),
                ('event_id', models.CharField(max_length=255, verbose_name='identifiant chez le prestataire')),
                ('type', models.CharField(max_length=100, verbose_name='type')),
                ('payload', models.JSONField(verbose_name='contenu')),
                ('received_at', models.DateTimeField(verbose_name='reçu le')),
                ('processed_at', models.DateTimeField(blank=True, null=True, verbose_name='traité le')),
                ('outcome', models.CharField(blank=True, choices=[('processed', 'Traité'), ('ignored', 'Ignoré')], max_length=9, verbose_name='résultat')),
                ('note', models.CharField(blank=True, max_length=300, verbose_name='détail')),
                ('attempts', models.PositiveSmallIntegerField(default=0, verbose_name='essais en erreur')),
                ('error', models.TextField(blank=True, verbose_name='dernière erreur')),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True, verbose_name='prochain essai')),
            ],
            options={
                'verbose_name': 'notification du prestataire',
                'verbose_name_plural': 'notifications du prestataire',
                'ordering': ['-received_at', '-id'],
                'indexes': [models.Index(condition=models.Q(('processed_at__isnull', True)), fields=['next_attempt_at'], name='provider_event_due')],
                'constraints': [models.UniqueConstraint(fields=('provider', 'event_id'), name='one_provider_event_per_id')],
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
