"""What staff may type as an amount or a whole number in admin forms: ASCII digits only."""

import pytest
from django.core.exceptions import ValidationError

from billing.parsing import WholeNumberField, euros_to_cents


@pytest.mark.parametrize("text, cents", [
    ("12.50", 1250),
    ("12,50", 1250),
    ("12,5 €", 1250),
    ("€12,5", 1250),
    ("12,50€", 1250),
    ("1 000,00", 100000),
    ("1\u00a0000,00", 100000),
    ("1\u202f000,00\u00a0€", 100000),
    ("7", 700),
    ("0,01", 1),
    ("0012,30", 1230),
])
def test_accepted_amounts(text, cents):
    assert euros_to_cents(text) == cents


@pytest.mark.parametrize("text, error", [
    ("1e2", "Indiquez un montant en euros, par exemple 12,50."),
    ("1_0", "Indiquez un montant en euros"),
    ("١٢٣", "Indiquez un montant en euros"),
    ("１２", "Indiquez un montant en euros"),  # fullwidth digits
    ("1,2,3", "Indiquez un montant en euros"),
    ("1.000,00", "Indiquez un montant en euros"),
    ("-5", "Indiquez un montant en euros"),
    ("+5", "Indiquez un montant en euros"),
    ("", "Indiquez un montant en euros"),
    ("€", "Indiquez un montant en euros"),
    ("12,", "Indiquez un montant en euros"),
    (",50", "Indiquez un montant en euros"),
    ("12€50", "Indiquez un montant en euros"),
    ("€12€", "Indiquez un montant en euros"),
    ("12 EUR", "Indiquez un montant en euros"),
    ("Infinity", "Indiquez un montant en euros"),
    ("NaN", "Indiquez un montant en euros"),
    ("12\t50", "Indiquez un montant en euros"),
    ("9" * 13, "Indiquez un montant en euros"),
    ("12,505", "au plus deux décimales"),
    ("1,234", "au plus deux décimales"),
    ("0", "Le montant doit être positif."),
    ("0,00", "Le montant doit être positif."),
])
def test_refused_amounts(text, error):
    with pytest.raises(ValidationError) as refused:
        euros_to_cents(text)
    assert error in refused.value.messages[0]


@pytest.mark.parametrize("text, number", [("5", 5), (" 12 ", 12), ("007", 7), (10, 10)])
def test_accepted_whole_numbers(text, number):
    assert WholeNumberField().clean(text) == number


@pytest.mark.parametrize("text", ["١٢٣", "１２", "1_0", "1e2", "12.0", "12,0", "-3", "+3",
                                  "abc", "1 000", "9" * 19])
def test_refused_whole_numbers(text):
    with pytest.raises(ValidationError) as refused:
        WholeNumberField().clean(text)
    assert refused.value.messages == ["Indiquez un nombre entier, en chiffres."]
