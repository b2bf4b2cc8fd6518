"""The "Support" group (issue 5, scope 4): what support staff need, nothing more.

- view every customer and money row (customers, their email addresses, subscriptions and their
  events, plans, invoices and lines, charges, refunds, credit notes, cards, emails);
- change subscriptions: the staff actions (refund, cancel, end now, extend, reactivate, retry,
  resend from the subscription, new licence key) are gated on it, the form itself is read-only;
- change emails: the outbox's "Renvoyer" action (the outbox itself is read-only);
- no change on customers (their admin form carries is_staff, is_superuser and groups), none on
  plans (prices), no add or delete on money rows, no delete on anything.

The `support` app adds its own permissions to this group (support 0002). The `legal` app's
terms are published by superusers: the group gets nothing there.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SUPPORT_GROUP = "Support"

PERMISSIONS = {
    "accounts": {"user": ["view"]},
    "account": {"emailaddress": ["view"]},
    "subscriptions": {
        "plan": ["view"],
        "subscription": ["view", "change"],
        "subscriptionevent": ["view"],
    },
    "billing": {
        "invoice": ["view"],
        "invoiceline": ["view"],
        "charge": ["view"],
        "refund": ["view"],
        "creditnote": ["view"],
        "paymentmethod": ["view"],
    },
    "notifications": {"outboxemail": ["view", "change"]},
}


def _codenames():
    for app_label, models in PERMISSIONS.items():
        for model, actions in models.items():
            for action in actions:
                yield app_label, f"{action}_{model}"


def create_support_group(apps, schema_editor):
    # Permissions are normally created after migrate; create them now (idempotent).
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=SUPPORT_GROUP)
    permissions = []
    for app_label, codename in _codenames():
        permissions.append(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    group.permissions.set(permissions)


def delete_support_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=SUPPORT_GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("account", "0001_initial"),
        ("subscriptions", "0003_event_kinds_plan_change"),
        ("billing", "0004_invoice_kind_proration"),
        ("notifications", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_support_group, delete_support_group)]
