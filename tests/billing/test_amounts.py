"""Money arithmetic (DESIGN §2, §3, §8): integer cents, rounded once, half-up."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing.amounts import (
    TaxedAmount,
    annual_remaining_months_refund,
    round_half_up,
    tax_from_net,
    tax_from_total,
    unused_days_refund,
)

# The rates the arithmetic is checked with (the dated table itself: tests/billing/test_vat.py);
# 8.1 is Switzerland's, for a vendor registered there (VAT_NON_EU_RATES).
VAT_RATES = {"FR": Decimal("20"), "BE": Decimal("21"), "DE": Decimal("19"), "ES": Decimal("21"),
             "IT": Decimal("22"), "LU": Decimal("17"), "NL": Decimal("21"), "CH": Decimal("8.1")}


# round_half_up ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Fraction(1, 2), 1),
        (Fraction(3, 2), 2),
        (Fraction(5, 2), 3),  # banker's rounding would say 2
        (Fraction(7, 2), 4),
        (Fraction(49, 100), 0),
        (Fraction(51, 100), 1),
        (Fraction(1, 3), 0),
        (Fraction(2, 3), 1),
        (Fraction(108966, 12), 9081),  # 9080.5
        (Fraction(75625, 10), 7563),  # 7562.5
        (Fraction(0), 0),
        (Decimal("0.5"), 1),
        (Decimal("2.5"), 3),
        (Decimal("2.4999"), 2),
        (Decimal("66.825"), 67),
        (Decimal("12"), 12),
        (0, 0),
        (990, 990),
    ],
)
def test_round_half_up(value, expected):
    # given / when
    result = round_half_up(value)
    # then
    assert result == expected
    assert type(result) is int


@hypothesis_settings(max_examples=500, deadline=None)
@given(
    numerator=st.integers(min_value=0, max_value=10**12),
    denominator=st.integers(min_value=1, max_value=10**6),
)
@example(numerator=5, denominator=2)
@example(numerator=10**12 - 1, denominator=2)
def test_property_round_half_up_of_a_fraction_is_the_nearest_integer_halves_up(
    numerator, denominator
):
    # given
    value = Fraction(numerator, denominator)
    # when
    result = round_half_up(value)
    # then: the exact integer answer, floor(value + 1/2)
    assert result == (2 * numerator + denominator) // (2 * denominator)


# VAT ---------------------------------------------------------------------------------------


# (country, net, expected vat): 825 and 8250 are the factories' plans, 999 a price ending
# in 9, 1 and 5 the smallest amounts, 8255 a price whose VAT ends in a half in some countries
TAX_FROM_NET_CASES = [
    ("FR", 825, 165),
    ("FR", 8250, 1650),
    ("FR", 999, 200),  # 199.8
    ("FR", 8255, 1651),
    ("FR", 1, 0),  # 0.2
    ("FR", 3, 1),  # 0.6
    ("BE", 825, 173),  # 173.25
    ("BE", 8250, 1733),  # 1732.5 → half up
    ("BE", 50, 11),  # 10.5 → half up
    ("DE", 825, 157),  # 156.75
    ("DE", 8250, 1568),  # 1567.5 → half up
    ("DE", 50, 10),  # 9.5 → half up
    ("ES", 825, 173),
    ("ES", 999, 210),  # 209.79
    ("IT", 825, 182),  # 181.5 → half up
    ("IT", 8250, 1815),
    ("LU", 825, 140),  # 140.25
    ("LU", 8250, 1403),  # 1402.5 → half up
    ("NL", 825, 173),
    ("NL", 0, 0),
    ("CH", 825, 67),  # 66.825
    ("CH", 8250, 668),  # 668.25
    ("CH", 999, 81),  # 80.919
    ("CH", 1000, 81),
    ("CH", 6173, 500),  # 500.013
    ("CH", 5, 0),  # 0.405
    ("CH", 100, 8),  # 8.1
    ("CH", 50, 4),  # 4.05
]


@pytest.mark.parametrize(("country", "net", "vat"), TAX_FROM_NET_CASES)
def test_tax_from_net(country, net, vat):
    # given
    rate = VAT_RATES[country]
    # when
    amount = tax_from_net(net_cents=net, vat_rate=rate)
    # then
    assert amount == TaxedAmount(net_cents=net, vat_cents=vat, total_cents=net + vat,
                                 vat_rate=rate)


def test_every_rate_has_a_tax_from_net_case():
    # given
    covered = {country for country, _, _ in TAX_FROM_NET_CASES}
    # when / then
    assert covered == set(VAT_RATES)


# (country, total, expected net)
TAX_FROM_TOTAL_CASES = [
    ("FR", 990, 825),
    ("FR", 9900, 8250),
    ("FR", 9075, 7563),  # 7562.5 → half up
    ("FR", 825, 688),  # 687.5 → half up
    ("FR", 1, 1),  # 0.83
    ("BE", 998, 825),  # 824.79
    ("BE", 121, 100),
    ("DE", 982, 825),  # 825.21
    ("DE", 119, 100),
    ("ES", 998, 825),
    ("IT", 1007, 825),  # 825.41
    ("IT", 61, 50),  # 50
    ("LU", 965, 825),  # 824.79
    ("LU", 117, 100),
    ("NL", 998, 825),
    ("CH", 892, 825),  # 825.16
    ("CH", 1081, 1000),
    ("CH", 8918, 8250),  # 8249.77
    ("CH", 1, 1),  # 0.925
    ("CH", 0, 0),
]


@pytest.mark.parametrize(("country", "total", "net"), TAX_FROM_TOTAL_CASES)
def test_tax_from_total(country, total, net):
    # given
    rate = VAT_RATES[country]
    # when
    amount = tax_from_total(total_cents=total, vat_rate=rate)
    # then
    assert amount == TaxedAmount(net_cents=net, vat_cents=total - net, total_cents=total,
                                 vat_rate=rate)


def test_every_rate_has_a_tax_from_total_case():
    # given
    covered = {country for country, _, _ in TAX_FROM_TOTAL_CASES}
    # when / then
    assert covered == set(VAT_RATES)


rates = st.sampled_from(sorted(VAT_RATES.values()))
cents = st.integers(min_value=0, max_value=10**9)


@hypothesis_settings(max_examples=500, deadline=None)
@given(total=cents, rate=rates)
@example(total=9075, rate=Decimal("20"))
@example(total=1, rate=Decimal("8.1"))
def test_property_tax_from_total_splits_the_total_exactly(total, rate):
    # given / when
    amount = tax_from_total(total_cents=total, vat_rate=rate)
    # then
    assert amount.total_cents == total
    assert amount.net_cents + amount.vat_cents == total
    assert amount.net_cents >= 0 and amount.vat_cents >= 0
    # the net is the exact quotient rounded half up: within half a cent of total / (1 + rate)
    exact_net = Fraction(total) * 100 / (100 + Fraction(rate))
    assert abs(amount.net_cents - exact_net) <= Fraction(1, 2)
    assert amount.net_cents - exact_net != Fraction(-1, 2)


@hypothesis_settings(max_examples=500, deadline=None)
@given(net=cents, rate=rates)
@example(net=8250, rate=Decimal("21"))
@example(net=825, rate=Decimal("8.1"))
def test_property_tax_from_net_rounds_vat_once_and_is_undone_by_tax_from_total(net, rate):
    # given / when
    amount = tax_from_net(net_cents=net, vat_rate=rate)
    # then
    exact_vat = Fraction(net) * Fraction(rate) / 100
    assert amount.vat_cents == (2 * exact_vat.numerator + exact_vat.denominator) // (
        2 * exact_vat.denominator
    )
    assert amount.total_cents == net + amount.vat_cents
    assert tax_from_total(total_cents=amount.total_cents, vat_rate=rate).net_cents == net


# annual_remaining_months_refund ----------------------------------------------------------


@pytest.mark.parametrize(
    ("full_months_elapsed", "expected"),
    [
        (0, 9075),
        (1, 8250),
        (2, 7425),
        (3, 6600),
        (4, 5775),
        (5, 4950),
        (6, 4125),
        (7, 3300),
        (8, 2475),
        (9, 1650),
        (10, 825),
        (11, 0),
    ],
)
def test_annual_refund_pays_back_the_months_after_the_current_one(full_months_elapsed, expected):
    # given: 82.50 € net + 20 % VAT = 99.00 €
    annual_total = 9900
    # when
    refund = annual_remaining_months_refund(
        annual_total_cents=annual_total,
        full_months_elapsed=full_months_elapsed,
        refundable_cents=annual_total,
    )
    # then
    assert refund == expected


@pytest.mark.parametrize(
    ("full_months_elapsed", "expected"),
    [
        (0, 9081),  # 9906 × 11 / 12 = 9080.5
        (1, 8255),
        (2, 7430),  # 7429.5
        (3, 6604),
        (4, 5779),  # 5778.5
        (5, 4953),
        (6, 4128),  # 4127.5
        (7, 3302),  # 3302.0
        (8, 2477),  # 2476.5
        (9, 1651),
        (10, 826),  # 825.5
        (11, 0),
    ],
)
def test_annual_refund_rounds_half_up_once(full_months_elapsed, expected):
    # given: 82.55 € net + 20 % VAT = 99.06 €
    annual_total = 9906
    # when
    refund = annual_remaining_months_refund(
        annual_total_cents=annual_total,
        full_months_elapsed=full_months_elapsed,
        refundable_cents=annual_total,
    )
    # then
    assert refund == expected


@pytest.mark.parametrize(
    ("refundable", "expected"),
    [(9900, 9075), (9075, 9075), (9074, 9074), (5000, 5000), (1, 1), (0, 0), (-5, 0)],
)
def test_annual_refund_is_capped_at_what_is_still_refundable(refundable, expected):
    # given: 11 months left are worth 90.75 €
    annual_total = 9900
    # when
    refund = annual_remaining_months_refund(
        annual_total_cents=annual_total, full_months_elapsed=0, refundable_cents=refundable
    )
    # then
    assert refund == expected


@pytest.mark.parametrize("full_months_elapsed", [12, 13, 24])
def test_annual_refund_after_the_year_is_nothing(full_months_elapsed):
    # given
    annual_total = 9900
    # when
    refund = annual_remaining_months_refund(
        annual_total_cents=annual_total,
        full_months_elapsed=full_months_elapsed,
        refundable_cents=annual_total,
    )
    # then
    assert refund == 0


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    total=st.integers(min_value=0, max_value=10**8),
    k=st.integers(min_value=0, max_value=11),
    already_refunded=st.integers(min_value=0, max_value=10**8),
)
def test_property_annual_refund_never_exceeds_the_refundable_nor_the_remaining_months(
    total, k, already_refunded
):
    # given
    refundable = max(0, total - already_refunded)
    # when
    refund = annual_remaining_months_refund(
        annual_total_cents=total, full_months_elapsed=k, refundable_cents=refundable
    )
    # then
    remaining = Fraction(total * (11 - k), 12)
    assert 0 <= refund <= refundable
    assert refund == min(refundable, (2 * remaining.numerator + remaining.denominator)
                         // (2 * remaining.denominator))


# Loi Chatel: the unused days of a paid period


@pytest.mark.parametrize(("paid", "unused", "days", "refundable", "expected"), [
    (9900, 355, 366, 9900, 9602),  # 9601.64 → 9602
    (990, 19, 30, 990, 627),
    (990, 0, 30, 990, 0),
    (990, 30, 30, 990, 990),
    (1000, 1, 8, 1000, 125),
    (1, 1, 2, 1, 1),  # 0.5 rounds half up
    (9900, 355, 366, 100, 100),  # capped at what remains refundable
])
def test_unused_days_refund(paid, unused, days, refundable, expected):
    # when / then
    assert unused_days_refund(paid_cents=paid, period_days=days, unused_days=unused,
                              refundable_cents=refundable) == expected


@pytest.mark.parametrize(("unused", "days"), [(-1, 30), (31, 30), (0, 0)])
def test_unused_days_refund_refuses_days_outside_the_period(unused, days):
    with pytest.raises(ValueError):
        unused_days_refund(paid_cents=990, period_days=days, unused_days=unused,
                           refundable_cents=990)
