import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_countries import countries


def new_customer_number() -> str:
    return f"C{secrets.randbelow(10**8):08d}"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


def country_choices():
    """Every country, named in the active language (django-countries), sorted by name."""
    return list(countries)


class CustomerType(models.TextChoices):
    INDIVIDUAL = "individual", _("Particulier")
    BUSINESS = "business", _("Professionnel")


class User(AbstractUser):
    """A customer (or a staff member) who logs in with their email address.

    The billing details (DESIGN §3, §14) are the customer's as they are today; an invoice
    keeps a copy of them as they were when it was issued."""

    username = None
    email = models.EmailField(_("adresse e-mail"), unique=True)
    customer_number = models.CharField(
        _("numéro client"), max_length=9, unique=True, default=new_customer_number, editable=False
    )
    billing_country = models.CharField(
        _("pays de facturation"), max_length=2, choices=country_choices, default="FR"
    )
    preferred_language = models.CharField(
        _("langue préférée"), max_length=5, choices=settings.LANGUAGES, default="fr"
    )
    # Database defaults: a process of the previous release still inserting customers while
    # this one migrates leaves them empty rather than failing.
    customer_type = models.CharField(_("type de client"), max_length=10,
                                     choices=CustomerType.choices,
                                     default=CustomerType.INDIVIDUAL,
                                     db_default=CustomerType.INDIVIDUAL)
    company_name = models.CharField(_("raison sociale"), max_length=200, blank=True, db_default="")
    address_line1 = models.CharField(_("adresse"), max_length=200, blank=True, db_default="")
    address_line2 = models.CharField(_("complément d'adresse"), max_length=200,
                                     blank=True, db_default="")
    postal_code = models.CharField(_("code postal"), max_length=20, blank=True, db_default="")
    city = models.CharField(_("ville"), max_length=100, blank=True, db_default="")
    # SIREN (9 digits) or SIRET (14), for a French business; stored without spaces.
    siren = models.CharField(_("SIREN / SIRET"), max_length=14, blank=True, db_default="")
    # An EU VAT number with its country prefix, without spaces (FR12345678901, DE123456789).
    vat_number = models.CharField(_("numéro de TVA intracommunautaire"), max_length=16,
                                  blank=True, db_default="")

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []

    objects = UserManager()

    class Meta:
        verbose_name = _("client")
        verbose_name_plural = _("clients")

    def __str__(self):
        return self.email


def user_display(user) -> str:
    """How allauth names a customer in its pages and emails (ACCOUNT_USER_DISPLAY)."""
    return user.get_full_name() or user.email


class ActionKey(models.Model):
    """The one-time key of a staff confirmation form (accounts.action_keys): the first POST of
    a key claims it and performs the action; a later POST of the same key only repeats the
    outcome recorded here."""

    class Status(models.TextChoices):
        CLAIMED = "claimed", _("en cours")
        DONE = "done", _("effectuée")
        REFUSED = "refused", _("refusée")

    key = models.CharField(max_length=32, primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.CLAIMED)
    # The django.contrib.messages level and text the staff member was shown.
    level = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(blank=True)
    claimed_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("clé d'action")
        verbose_name_plural = _("clés d'action")

    def __str__(self):
        return f"{self.key} ({self.status})"
