from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.action_keys import ActionKeyForm
from billing.parsing import euros_to_cents
from billing.templatetags.money import money
from formats.dates import long_date
from support.models import SupportRequest
from support.services import STAFF_REPLY_STATUSES

MESSAGE_MAX_LENGTH = 5000


class SubscriptionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, subscription):
        return _("%(plan)s · souscrit le %(date)s · %(status)s") % {
            "plan": subscription.plan,
            "date": long_date(subscription.started_at),
            "status": subscription.get_status_display(),
        }


class SupportRequestForm(forms.Form):
    """"Contacter le support": the subscription can only be one of the customer's own."""

    subject = forms.CharField(label=_("Objet"), max_length=200)
    category = forms.ChoiceField(
        label=_("Catégorie"),
        choices=[("", _("— Choisir une catégorie —")), *SupportRequest.Category.choices],
    )
    subscription = SubscriptionChoiceField(
        label=_("Abonnement concerné (facultatif)"),
        queryset=None,
        required=False,
        empty_label=_("— Aucun abonnement en particulier —"),
    )
    body = forms.CharField(
        label=_("Votre message"),
        max_length=MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 8}),
    )

    def __init__(self, *args, subscriptions, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["subscription"].queryset = subscriptions

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("category") == SupportRequest.Category.REFUND
            and not cleaned.get("subscription")
            and "subscription" not in self.errors
            and self.fields["subscription"].queryset.exists()
        ):
            self.add_error("subscription", _(
                "Choisissez l'abonnement concerné par la demande de remboursement."
            ))
        return cleaned


class SupportReplyForm(forms.Form):
    body = forms.CharField(
        label=_("Votre réponse"),
        max_length=MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5}),
    )


# Staff forms (admin): French only, like the rest of the admin.

class StaffReplyForm(ActionKeyForm):
    body = forms.CharField(
        label="Réponse au client",
        max_length=MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
    )
    status = forms.ChoiceField(
        label="Statut après la réponse",
        choices=list(zip(STAFF_REPLY_STATUSES, [
            "En attente de la réponse du client", "Résolue", "Fermée",
        ], strict=True)),
        initial=SupportRequest.Status.AWAITING_CUSTOMER,
    )


class RefundDecisionForm(ActionKeyForm):
    APPROVE = "approve"
    REFUSE = "refuse"

    decision = forms.ChoiceField(
        label="Décision",
        choices=[(APPROVE, "Accorder un remboursement"), (REFUSE, "Refuser le remboursement")],
        widget=forms.RadioSelect,
    )
    charge = forms.TypedChoiceField(label="Paiement à rembourser", coerce=int, required=False)
    amount = forms.CharField(label="Montant à rembourser (€ TTC)", required=False,
                             max_length=20)
    body = forms.CharField(
        label="Message au client",
        required=False,
        max_length=MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 80}),
        help_text="Obligatoire pour un refus ; pour un remboursement accordé, un message "
                  "standard est envoyé s'il est laissé vide.",
    )

    def __init__(self, *args, charges, **kwargs):
        super().__init__(*args, **kwargs)
        self.charges = {charge.pk: charge for charge in charges}
        self.fields["charge"].choices = [("", "—")] + [
            (charge.pk, f"{charge.invoice.number} · {money(charge.amount_cents, charge.currency)} "
                        f"payés · {money(charge.refundable_cents, charge.currency)} remboursables")
            for charge in charges
        ]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("decision") == self.REFUSE:
            if not (cleaned.get("body") or "").strip():
                self.add_error("body", "Expliquez au client pourquoi le remboursement est refusé.")
            return cleaned
        if cleaned.get("decision") != self.APPROVE:
            return cleaned
        charge = self.charges.get(cleaned.get("charge"))
        if charge is None:
            self.add_error("charge", "Choisissez le paiement à rembourser.")
        try:
            amount_cents = euros_to_cents(cleaned.get("amount") or "")
        except ValidationError as error:
            self.add_error("amount", error)
            return cleaned
        if charge is not None and amount_cents > charge.refundable_cents:
            self.add_error("amount", (
                "Le montant dépasse ce qui reste remboursable sur ce paiement "
                f"({money(charge.refundable_cents, charge.currency)})."
            ))
        cleaned["charge_obj"] = charge
        cleaned["amount_cents"] = amount_cents
        return cleaned
