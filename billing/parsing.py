"""Strict reading of what staff type in admin forms: amounts in euros and whole numbers, in
ASCII digits only (Python's Decimal and int also read "1e2", "1_0" and "١٢٣")."""

import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

AMOUNT = re.compile(r"([0-9]{1,12})(?:[.,]([0-9]{1,2}))?")
TOO_MANY_DECIMALS = re.compile(r"[0-9]+[.,][0-9]{3,}")
SPACES = re.compile(r"[ \u00a0\u202f]")  # space, no-break space, narrow no-break space
WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")


def euros_to_cents(text: str) -> int:
    """A positive amount in euros → cents, exactly: "12,50", "12.50", "12,5 €", "1 000" → 1250,
    1250, 1250, 100000. ASCII digits with at most one decimal separator and two decimals;
    spaces and one leading or trailing € are ignored. Anything else raises ValidationError."""
    cleaned = SPACES.sub("", text or "")
    cleaned = cleaned.removesuffix("€") if cleaned.endswith("€") else cleaned.removeprefix("€")
    match = AMOUNT.fullmatch(cleaned)
    if match is None:
        if TOO_MANY_DECIMALS.fullmatch(cleaned):
            raise ValidationError(_("Indiquez un montant avec au plus deux décimales."))
        raise ValidationError(_("Indiquez un montant en euros, par exemple 12,50."))
    euros, decimals = match.groups()
    cents = int(euros) * 100 + int((decimals or "0").ljust(2, "0"))
    if cents <= 0:
        raise ValidationError(_("Le montant doit être positif."))
    return cents


class WholeNumberField(forms.IntegerField):
    """An IntegerField that reads ASCII digits only (no sign, "1_0", "1e2", "12.0" nor
    other scripts' digits)."""

    default_error_messages = {"invalid": gettext_lazy("Indiquez un nombre entier, en chiffres.")}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        text = str(value).strip()
        if not WHOLE_NUMBER.fullmatch(text):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return int(text)
