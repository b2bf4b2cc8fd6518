from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Clients"

    def ready(self):
        from accounts import signals  # noqa: F401  (connects the receivers)
