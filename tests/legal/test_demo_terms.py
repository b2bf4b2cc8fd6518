"""The demo's terms (issue 10, item 5): correct French, no "plans", "mises à niveau" or
"rétrogradations"; the 14-day withdrawal and where its function is, the résiliation, the
commitment, tacit renewal and the Chatel notice; the version's date written the French way."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from legal.models import TermsVersion
from legal.selectors import terms_current
from subscriptions.demo import load_demo

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
AFTER_THE_WITHDRAWAL_FUNCTION = datetime(2026, 7, 1, 10, 0, tzinfo=PARIS)
ANGLICISMS = [r"\bplans?\b", r"mises? à niveau", r"rétrogradations?", r"\bupgrade", r"\bdowngrade"]


@pytest.fixture
def demo():
    with time_machine.travel(AFTER_THE_WITHDRAWAL_FUNCTION, tick=False):
        load_demo(now=AFTER_THE_WITHDRAWAL_FUNCTION)
        yield


def test_no_version_uses_the_anglicisms(demo):
    # when
    texts = [f"{v.title}\n{v.summary}\n{v.body}" for v in TermsVersion.objects.all()]
    # then
    assert len(texts) == 2
    found = [(pattern, text[:40]) for text in texts for pattern in ANGLICISMS
             if re.search(pattern, text, flags=re.IGNORECASE)]
    assert found == []


def test_the_terms_in_force_say_what_the_law_asks(client, demo):
    # when
    page = client.get(reverse("legal:terms")).content.decode()
    # then
    assert terms_current().version == "2"
    assert "Version 2, en vigueur à compter du 19 juin 2026." in page
    for words in [
        # the withdrawal, its function and where it is
        "délai de quatorze jours pour renoncer au contrat",
        "jusqu&#x27;au 24 mars inclus",
        "« Renoncer au contrat ici », proposée pendant tout le délai dans Mon compte → "
        "Abonnement et facturation et en bas de chaque page",
        "« Confirmer la rétractation »",
        "Un accusé de réception indiquant la date et l&#x27;heure de réception",
        # résiliation, commitment, renewal, Chatel
        "avec le lien « Résilier mon contrat » en bas de chaque page",
        "Formule avec engagement",
        "les échéances mensuelles restent dues jusque-là",
        "reconduit tacitement",
        "article L215-1 du Code de la consommation",
        "dans un encadré la date limite",
        "remboursées dans un délai de trente jours",
    ]:
        assert words in page, words


def test_loaded_again_it_adds_no_version(demo):
    # when
    with time_machine.travel(AFTER_THE_WITHDRAWAL_FUNCTION, tick=False):
        load_demo(now=AFTER_THE_WITHDRAWAL_FUNCTION)
    # then
    assert sorted(TermsVersion.objects.values_list("version", flat=True)) == ["1", "2"]
