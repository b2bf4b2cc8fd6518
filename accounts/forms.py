from django import forms
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from stdnum.exceptions import ValidationError as NumberInvalid
from stdnum.fr import siren, siret
from stdnum.util import clean

from billing.vat import HOME_COUNTRY, VatNumberInvalid, vat_number_normalize
from billing.vat_rates import EU_COUNTRIES

from .models import CustomerType, User, country_choices

ADDRESS_FIELDS = ["address_line1", "postal_code", "city", "billing_country"]


class SignupProfileForm(forms.Form):
    """Extra fields of allauth's signup form."""

    first_name = forms.CharField(label=_("Prénom"), max_length=150)
    last_name = forms.CharField(label=_("Nom"), max_length=150)
    billing_country = forms.ChoiceField(label=_("Pays de facturation"), choices=country_choices)

    def signup(self, request, user):
        user.first_name = self.cleaned_data["first_name"]
        user.last_name = self.cleaned_data["last_name"]
        user.billing_country = self.cleaned_data["billing_country"]
        user.preferred_language = (get_language() or "fr")[:2]
        user.save()


def siren_normalize(number: str) -> str:
    """A SIREN (9 digits) or SIRET (14 digits) as stored, digits only; python-stdnum checks
    its Luhn key. Raises forms.ValidationError with the French message."""
    number = clean(number or "", " .-").strip()
    module = {9: siren, 14: siret}.get(len(number))
    if module is None or not number.isdigit():
        raise forms.ValidationError(
            _("Un SIREN compte 9 chiffres et un SIRET 14 chiffres."), code="length")
    try:
        module.validate(number)
    except NumberInvalid as error:
        raise forms.ValidationError(
            _("Ce numéro SIREN/SIRET n'est pas valide : vérifiez les chiffres."),
            code="checksum") from error
    return number


class BillingDetailsForm(forms.ModelForm):
    """Who is invoiced (DESIGN §3, §14): a consumer ("Particulier") or a business
    ("Professionnel", with its company name, SIREN/SIRET in France and EU VAT number), and
    the billing address. The checkout asks for the address (``require_address``); the
    profile lets it be completed later. A refused number saves nothing."""

    # Longer than stored: the numbers are often typed with spaces, stored without.
    siren = forms.CharField(label=_("SIREN ou SIRET (entreprise française)"), max_length=24,
                            required=False)
    vat_number = forms.CharField(
        label=_("Numéro de TVA intracommunautaire"), max_length=24, required=False,
        help_text=_("Obligatoire pour une entreprise de l'Union européenne hors de France : "
                    "elle est alors facturée hors taxes (autoliquidation)."))

    class Meta:
        model = User
        fields = ["customer_type", "company_name", "siren", "vat_number", "address_line1",
                  "address_line2", "postal_code", "city", "billing_country"]
        labels = {
            "customer_type": _("Vous êtes"),
            "company_name": _("Raison sociale"),
            "address_line1": _("Adresse"),
            "address_line2": _("Complément d'adresse"),
            "postal_code": _("Code postal"),
            "city": _("Ville"),
            "billing_country": _("Pays de facturation"),
        }
        widgets = {"customer_type": forms.RadioSelect}

    def __init__(self, *args, require_address=False, **kwargs):
        super().__init__(*args, **kwargs)
        # A form posted without the choice (an older page) keeps the customer a consumer.
        self.fields["customer_type"].required = False
        for name in ADDRESS_FIELDS:
            self.fields[name].required = require_address

    def clean_customer_type(self):
        return self.cleaned_data.get("customer_type") or CustomerType.INDIVIDUAL

    def clean(self):
        data = super().clean()
        country = data.get("billing_country")
        if data.get("customer_type") != CustomerType.BUSINESS:
            data.update(company_name="", siren="", vat_number="")
            return data
        if not data.get("company_name", "").strip():
            self.add_error("company_name",
                           _("Indiquez la raison sociale de votre entreprise."))
        if country:
            self._clean_siren(data, country)
            self._clean_vat_number(data, country)
        return data

    def _clean_siren(self, data, country):
        if country != HOME_COUNTRY:
            data["siren"] = ""  # a French register number only
            return
        if not data.get("siren"):
            self.add_error("siren", _("Indiquez le SIREN (9 chiffres) ou le SIRET "
                                      "(14 chiffres) de votre entreprise."))
            return
        try:
            data["siren"] = siren_normalize(data["siren"])
        except forms.ValidationError as error:
            self.add_error("siren", error)

    def _clean_vat_number(self, data, country):
        if country not in EU_COUNTRIES:
            data["vat_number"] = ""  # an intra-community number only
            return
        if not data.get("vat_number"):
            if country != HOME_COUNTRY:
                self.add_error("vat_number", _(
                    "Indiquez le numéro de TVA intracommunautaire de votre entreprise : il "
                    "permet de la facturer hors taxes (autoliquidation)."))
            return
        try:
            number = vat_number_normalize(data["vat_number"], country)
        except VatNumberInvalid as error:
            if error.reason == "wrong_country":
                message = _("Ce numéro de TVA n'est pas celui d'une entreprise du pays de "
                            "facturation : il doit commencer par %(prefix)s.")
            else:
                message = _("Ce numéro de TVA intracommunautaire n'est pas valide : "
                            "vérifiez son format et ses chiffres.")
            self.add_error("vat_number",
                           forms.ValidationError(message, params={"prefix": error.prefix}))
            return
        french_siren = data.get("siren", "")[:9] if "siren" not in self.errors else ""
        if country == HOME_COUNTRY and french_siren and number[4:] != french_siren:
            self.add_error("vat_number", _("Ce numéro de TVA ne correspond pas au SIREN "
                                           "indiqué."))
            return
        data["vat_number"] = number


class ProfileForm(BillingDetailsForm):
    class Meta(BillingDetailsForm.Meta):
        fields = ["first_name", "last_name", *BillingDetailsForm.Meta.fields,
                  "preferred_language"]
        labels = {"first_name": _("Prénom"), "last_name": _("Nom"),
                  **BillingDetailsForm.Meta.labels}


def billing_details_complete(customer) -> bool:
    """Whether the customer may be invoiced a first time: a billing address, and for a
    business the details its invoices need, all as the checkout's form would accept them."""
    saved = forms.models.model_to_dict(customer, fields=BillingDetailsForm.Meta.fields)
    return BillingDetailsForm(saved, instance=User(pk=customer.pk),
                              require_address=True).is_valid()
