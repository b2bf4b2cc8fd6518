"""Money arithmetic (DESIGN §2, §3, §7, §8): integer cents in, integer cents out.

Fractions exist only inside these functions and are rounded once, half-up, to the cent.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction


def round_half_up(value: Fraction | Decimal | int) -> int:
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class TaxedAmount:
    net_cents: int
    vat_cents: int
    total_cents: int
    vat_rate: Decimal


def tax_from_net(*, net_cents: int, vat_rate: Decimal) -> TaxedAmount:
    vat_cents = round_half_up(Fraction(net_cents) * Fraction(vat_rate) / 100)
    return TaxedAmount(net_cents, vat_cents, net_cents + vat_cents, vat_rate)


def tax_from_total(*, total_cents: int, vat_rate: Decimal) -> TaxedAmount:
    """Split a tax-inclusive amount (a refund, say) into net and VAT."""
    net_cents = round_half_up(Fraction(total_cents) * 100 / (100 + Fraction(vat_rate)))
    return TaxedAmount(net_cents, total_cents - net_cents, total_cents, vat_rate)


def annual_remaining_months_refund(
    *, annual_total_cents: int, full_months_elapsed: int, refundable_cents: int
) -> int:
    """DESIGN §8, annual row: the months after the current one, capped at what is refundable."""
    remaining_months = max(0, 12 - (full_months_elapsed + 1))
    amount = round_half_up(Fraction(annual_total_cents * remaining_months, 12))
    return max(0, min(amount, refundable_cents))


def unused_days_refund(
    *, paid_cents: int, period_days: int, unused_days: int, refundable_cents: int
) -> int:
    """Loi Chatel (L215-1, DESIGN §8): what was paid for the days of the period left unused,
    ``round_half_up(paid × unused_days / period_days)``, capped at what is refundable."""
    if period_days <= 0 or not 0 <= unused_days <= period_days:
        raise ValueError(f"{unused_days} unused days out of a {period_days}-day period")
    amount = round_half_up(Fraction(paid_cents * unused_days, period_days))
    return max(0, min(amount, refundable_cents))


def price_paid_for_period_cents(*, parts: list[tuple[int, int]], period_seconds: int) -> int:
    """What the customer was invoiced for a whole period, from the invoices paying for its
    end: each (total_cents, seconds it covers) scaled to the period. An upgrade's proration
    covering the rest of the period adds the price difference; a plain period's invoice is
    its own total (DESIGN §8: what was paid decides, never today's price)."""
    if period_seconds <= 0 or any(seconds <= 0 for _total, seconds in parts):
        raise ValueError("empty period")
    return round_half_up(sum((Fraction(total * period_seconds, seconds)
                              for total, seconds in parts), Fraction(0)))


def _check_time(remaining_seconds: int, period_seconds: int) -> None:
    if period_seconds <= 0 or not 0 <= remaining_seconds <= period_seconds:
        raise ValueError(f"remaining {remaining_seconds}s out of a {period_seconds}s period")


def unused_credit_cents(*, total_cents: int, remaining_seconds: int, period_seconds: int) -> int:
    """DESIGN §7: the part of a period's tax-inclusive price not used yet, to the second."""
    _check_time(remaining_seconds, period_seconds)
    return round_half_up(Fraction(total_cents * remaining_seconds, period_seconds))


def prorated_difference_cents(
    *, old_total_cents: int, new_total_cents: int, remaining_seconds: int, period_seconds: int
) -> int:
    """DESIGN §7, upgrade: the tax-inclusive price difference for the time left in the period,
    ``round_half_up((new − old) × remaining / period)``, never negative."""
    _check_time(remaining_seconds, period_seconds)
    difference = max(0, new_total_cents - old_total_cents)
    return round_half_up(Fraction(difference * remaining_seconds, period_seconds))


def annual_switch_charge_cents(
    *, annual_total_cents: int, monthly_total_cents: int, remaining_seconds: int,
    period_seconds: int,
) -> int:
    """DESIGN §7, monthly → annual: the annual total minus the unused part of the monthly
    period, never negative."""
    credit = unused_credit_cents(total_cents=monthly_total_cents,
                                 remaining_seconds=remaining_seconds,
                                 period_seconds=period_seconds)
    return max(0, annual_total_cents - credit)
