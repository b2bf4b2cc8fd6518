from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.gateways import CardDetails
from billing.gateways.simulated import luhn_valid


class CardForm(forms.Form):
    """Card details go straight to the provider's tokenizer; only the token, brand, last 4
    digits and expiry are kept."""

    card_number = forms.CharField(
        label=_("Numéro de carte"),
        max_length=23,
        widget=forms.TextInput(attrs={"autocomplete": "cc-number", "inputmode": "numeric"}),
    )
    exp_month = forms.IntegerField(label=_("Mois d'expiration"), min_value=1, max_value=12,
                                   widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-month"}))
    exp_year = forms.IntegerField(label=_("Année d'expiration"), min_value=2000, max_value=2100,
                                  widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-year"}))
    cvc = forms.RegexField(
        label=_("Cryptogramme (CVC)"),
        regex=r"^\d{3,4}$",
        error_messages={"invalid": _("Le cryptogramme compte 3 ou 4 chiffres.")},
        widget=forms.TextInput(attrs={"autocomplete": "cc-csc", "inputmode": "numeric"}),
    )

    def clean_card_number(self):
        number = "".join(self.cleaned_data["card_number"].split()).replace("-", "")
        if not luhn_valid(number):
            raise forms.ValidationError(_("Ce numéro de carte n'est pas valide."))
        return number

    def clean(self):
        cleaned = super().clean()
        month, year = cleaned.get("exp_month"), cleaned.get("exp_year")
        if month and year:
            today = timezone.localdate()
            if (year, month) < (today.year, today.month):
                raise forms.ValidationError(_("Cette carte a expiré."))
        return cleaned

    def card_details(self) -> CardDetails:
        data = self.cleaned_data
        return CardDetails(data["card_number"], data["exp_month"], data["exp_year"], data["cvc"])
