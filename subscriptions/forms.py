from django import forms
from django.utils.translation import gettext_lazy as _

from subscriptions.models import CancelReason


class CancelForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("Pourquoi partez-vous ? (facultatif)"),
        choices=[("", _("— Choisir une raison —")), *CancelReason.choices],
        required=False,
    )
    reason_detail = forms.CharField(
        label=_("Un commentaire ? (facultatif)"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
