from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class TermsVersion(models.Model):
    """One version of the subscription terms (seed 004 "Mises à jour de la politique").

    Drafted, then published once from admin; a published version is never edited. The
    current version is the latest published one whose effective date has come."""

    version = models.CharField(_("version"), max_length=20, unique=True)
    title = models.CharField(_("titre"), max_length=200)
    summary = models.TextField(
        _("ce qui change"), blank=True,
        help_text=_("Résumé des changements, repris dans l'e-mail envoyé aux clients."),
    )
    body = models.TextField(_("texte"), help_text=_("Texte brut ; une ligne vide sépare deux "
                                                    "paragraphes."))
    effective_date = models.DateField(_("date d'effet"))
    published_at = models.DateTimeField(_("publiée le"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("créée le"), auto_now_add=True)

    class Meta:
        ordering = ["-effective_date", "-id"]
        verbose_name = _("version des conditions")
        verbose_name_plural = _("versions des conditions")
        indexes = [models.Index(fields=["published_at", "effective_date"],
                                name="terms_current_scan")]

    def __str__(self):
        return f"{self.version} — {self.title}"

    @property
    def is_published(self):
        return self.published_at is not None

    def paragraphs(self):
        return [block.strip() for block in self.body.replace("\r\n", "\n").split("\n\n")
                if block.strip()]


class TermsAcceptance(models.Model):
    """Append-only record of a customer accepting a version at checkout."""

    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="terms_acceptances"
    )
    version = models.ForeignKey(TermsVersion, on_delete=models.PROTECT,
                                related_name="acceptances")
    subscription = models.ForeignKey(
        "subscriptions.Subscription", on_delete=models.PROTECT, null=True, blank=True,
        related_name="terms_acceptances",
    )
    accepted_at = models.DateTimeField()

    class Meta:
        ordering = ["-accepted_at", "-id"]
        verbose_name = _("acceptation des conditions")
        verbose_name_plural = _("acceptations des conditions")

    def __str__(self):
        return f"{self.customer} — {self.version.version}"
