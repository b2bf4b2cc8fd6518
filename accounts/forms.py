from django import forms
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from .models import User, country_choices


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


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["first_name", "last_name", "billing_country", "preferred_language"]
        labels = {"first_name": _("Prénom"), "last_name": _("Nom")}
