from django import forms
from django.utils.translation import gettext_lazy as _

from subscriptions.models import CancelReason
from subscriptions.policy import effective_at_on
from subscriptions.selectors import (
    business_tz,
    cancellable_by_reference,
    cancellation_effective_bounds,
    cancellation_quote,
)
from subscriptions.services.cancel import effective_date_error


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


class ResiliationForm(CancelForm):
    """The recap of "Résilier mon contrat" (L215-1-1, D215-2): the customer checks and may
    correct their name, the address for the acknowledgement, the contract reference and the
    effective date (the earliest possible by default; a later one within the current period).

    Valid, it gives ``subscription`` (the contract the reference names), ``effective_at`` and
    ``quote`` (the terms for that date)."""

    name = forms.CharField(label=_("Nom et prénom"), max_length=150)
    email = forms.EmailField(label=_("Adresse e-mail pour l'accusé de réception"))
    customer_number = forms.CharField(label=_("Numéro client"), max_length=20)
    subscription_reference = forms.CharField(label=_("Référence de l'abonnement"),
                                             max_length=20)
    effective_date = forms.DateField(
        label=_("Date d'effet"),
        input_formats=["%Y-%m-%d", "%d/%m/%Y"],
        widget=forms.DateInput(attrs={"type": "date", "aria-describedby": "effective-date-help"},
                               format="%Y-%m-%d"),
    )
    field_order = ["name", "email", "customer_number", "subscription_reference",
                   "effective_date", "reason", "reason_detail"]

    def __init__(self, *args, customer, subscription, now, **kwargs):
        self.customer, self.now = customer, now
        self.subscription, self.effective_at, self.quote = subscription, None, None
        tz = business_tz()
        earliest, latest = cancellation_effective_bounds(
            subscription=subscription,
            quote=cancellation_quote(subscription=subscription, now=now))
        kwargs.setdefault("initial", {
            "name": customer.get_full_name(),
            "email": customer.email,
            "customer_number": customer.customer_number,
            "subscription_reference": subscription.reference,
            "effective_date": earliest.astimezone(tz).date(),
        })
        super().__init__(*args, **kwargs)
        self.fields["effective_date"].widget.attrs.update(
            min=earliest.astimezone(tz).date().isoformat(),
            max=latest.astimezone(tz).date().isoformat())

    def clean(self):
        cleaned = super().clean()
        number, reference = cleaned.get("customer_number"), cleaned.get("subscription_reference")
        if number is not None and reference is not None:
            subscription = cancellable_by_reference(customer=self.customer,
                                                    customer_number=number, reference=reference)
            if subscription is None and cancellable_by_reference(
                customer=self.customer, customer_number=self.customer.customer_number,
                reference=reference,
            ) is not None:
                self.add_error("customer_number",
                               _("Ce numéro client n'est pas le vôtre : il figure sur la page "
                                 "Profil de Mon compte."))
            elif subscription is None:
                self.add_error("subscription_reference",
                               _("Cette référence ne correspond à aucun de vos abonnements."))
            else:
                self.subscription = subscription
        day = cleaned.get("effective_date")
        if day is not None and not self.has_error("customer_number") and not self.has_error(
            "subscription_reference"
        ):
            earliest_quote = cancellation_quote(subscription=self.subscription, now=self.now)
            earliest, latest = cancellation_effective_bounds(subscription=self.subscription,
                                                             quote=earliest_quote)
            self.effective_at = effective_at_on(day, earliest=earliest, latest=latest,
                                                tz=business_tz())
            if self.effective_at is None:
                self.add_error("effective_date",
                               effective_date_error(earliest=earliest, latest=latest))
            else:
                self.quote = cancellation_quote(subscription=self.subscription, now=self.now,
                                                effective_at=self.effective_at)
        return cleaned
