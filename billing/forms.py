from django import forms
from django.utils.translation import gettext_lazy as _


class CardTokenForm(forms.Form):
    """What the portal receives of a card (DESIGN §13): the token the provider's own fields
    answered. Never a card number; brand, last 4 digits and expiry come from the provider."""

    card_token = forms.RegexField(
        regex=r"^[A-Za-z0-9_]{4,64}$",
        required=True,
        error_messages={
            "required": _("Saisissez votre carte dans le formulaire de paiement."),
            "invalid": _("La carte n'a pas pu être transmise : saisissez-la à nouveau."),
        },
    )

    @property
    def token(self) -> str:
        return self.cleaned_data["card_token"]
