"""One-time action keys for the staff confirmation forms (DESIGN §11): a double click, a
browser resubmit or concurrent POSTs of the same form perform its action once.

Each rendering of a confirmation form carries a new random key (ActionKeyForm). The first POST
of a key claims it, in its own committed transaction, then performs the action and records
what the staff member was told; every later POST of the key does nothing and repeats that."""

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.db import IntegrityError, transaction
from django.forms.boundfield import BoundField
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ActionKey

ACTION_KEY_FIELD = "action_key"
KEY_FORMAT = re.compile(r"[A-Za-z0-9_-]{32}")


def new_action_key() -> str:
    return secrets.token_urlsafe(24)  # 32 characters of KEY_FORMAT


class ActionRefused(Exception):
    """Raised by a ``perform`` callable: nothing was done; the message is shown as is."""


@dataclass(frozen=True)
class Outcome:
    level: int  # a django.contrib.messages level
    message: str
    # Nothing was done, now or by an earlier POST of the key: the form is shown again.
    refused: bool = False


def perform_once(
    *, key, user, perform: Callable[[], tuple[int, str]], now=None
) -> Outcome:
    """Run ``perform`` for the first POST of ``key`` only; it returns the (level, message) to
    show, or raises ActionRefused. Call it outside any transaction: the claim must be
    committed before ``perform`` runs (which may commit steps of its own, e.g. a charge
    prepared before the payment provider is called), so that neither a concurrent POST nor a
    resubmission after a crash in the middle performs the action a second time."""
    if not isinstance(key, str) or not KEY_FORMAT.fullmatch(key):
        return Outcome(messages.ERROR, _(
            "Cette confirmation n'est pas valide (clé d'action absente ou incorrecte) : rien "
            "n'a été fait. Confirmez de nouveau depuis le formulaire."
        ), refused=True)
    now = now or timezone.now()
    try:
        with transaction.atomic():
            ActionKey.objects.create(key=key, user=user, claimed_at=now)
    except IntegrityError:
        return _repeated(ActionKey.objects.get(key=key))
    try:
        level, message = perform()
    except ActionRefused as refusal:
        outcome = Outcome(messages.ERROR, str(refusal), refused=True)
        _record(key, ActionKey.Status.REFUSED, outcome, now)
        return outcome
    outcome = Outcome(level, message)
    _record(key, ActionKey.Status.DONE, outcome, now)
    return outcome


def _record(key, status, outcome: Outcome, now) -> None:
    ActionKey.objects.filter(key=key).update(status=status, level=outcome.level,
                                             message=outcome.message, finished_at=now)


def _repeated(claimed: ActionKey) -> Outcome:
    if claimed.status == ActionKey.Status.DONE:
        return Outcome(messages.WARNING, _(
            "Cette action a déjà été effectuée (confirmation envoyée deux fois) ; elle n'a pas "
            "été refaite. Résultat de la première : %(message)s"
        ) % {"message": claimed.message})
    if claimed.status == ActionKey.Status.REFUSED:
        return Outcome(messages.ERROR, _(
            "Cette confirmation a déjà été envoyée et refusée ; elle n'a pas été refaite. "
            "Motif : %(message)s"
        ) % {"message": claimed.message}, refused=True)
    # Still running, or interrupted: its effect is unknown, so it is not tried again.
    return Outcome(messages.WARNING, _(
        "Cette action a déjà été envoyée et est en cours (ou a été interrompue) ; elle n'a pas "
        "été refaite. Vérifiez son résultat dans l'historique avant de recommencer."
    ))


class _NewKeyBoundField(BoundField):
    def value(self):
        # A new key at every rendering, whatever was posted: a form shown again (after an
        # error or a refusal) is a new action.
        return self.initial


class ActionKeyField(forms.CharField):
    widget = forms.HiddenInput

    def __init__(self):
        # Checked by perform_once, not by the form: a missing key is refused before anything
        # else is looked at.
        super().__init__(required=False, initial=new_action_key)

    def get_bound_field(self, form, field_name):
        return _NewKeyBoundField(form, self, field_name)


class ActionKeyForm(forms.Form):
    """Base of every staff confirmation form: the hidden one-time action key."""

    action_key = ActionKeyField()

    @property
    def posted_action_key(self):
        return self[ACTION_KEY_FIELD].data
