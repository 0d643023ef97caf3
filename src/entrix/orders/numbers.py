"""Exact decimal numbers within DynamoDB's Number type, and their canonical text.

Numbers travel as `Decimal` parsed from the JSON text, never through binary float, so `2.1`
stays `2.1`. This module is free of pydantic so the read path can use it cheaply.
"""

from __future__ import annotations

from decimal import Decimal

# DynamoDB keeps 38 significant digits; magnitudes from 1E-130 to 9.99...9E+125 (38 nines), or 0.
MAX_SIGNIFICANT_DIGITS = 38
MIN_ADJUSTED_EXPONENT = -130
MAX_ADJUSTED_EXPONENT = 125
# Canonical text switches to exponent notation past this many integer digits.
_PLAIN_INTEGER_DIGITS = 40


def _trimmed(value: Decimal) -> Decimal:
    """The same value with trailing zeros moved into the exponent (exact, no context rounding)."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    end = len(digits)
    while end > 1 and digits[end - 1] == 0:
        end -= 1
    return Decimal((sign, digits[:end], exponent + len(digits) - end))


def dynamodb_number_problem(value: Decimal) -> str | None:
    """Why DynamoDB would refuse `value` as a Number, or None when it fits exactly."""
    if not value.is_finite():
        return "must be a finite number"
    if value.is_zero():
        return None
    trimmed = _trimmed(value)
    if len(trimmed.as_tuple().digits) > MAX_SIGNIFICANT_DIGITS:
        return f"must have at most {MAX_SIGNIFICANT_DIGITS} significant digits"
    adjusted = trimmed.adjusted()
    if adjusted > MAX_ADJUSTED_EXPONENT:
        return "magnitude must be below 1E+126"
    if adjusted < MIN_ADJUSTED_EXPONENT:
        return "magnitude must be 0 or at least 1E-130"
    return None


def number_text(value: Decimal | int) -> str:
    """Exact text of a number, valid both as a JSON number and a DynamoDB `N` value.

    Trailing zeros are dropped (DynamoDB drops them too); integers are written in plain digits
    unless very long, other values as Python's `str(Decimal)` does (`2.1`, `1E-130`).
    """
    if isinstance(value, int):
        return str(value)
    if value.is_zero():
        return "0"
    trimmed = _trimmed(value)
    exponent = trimmed.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent >= 0 and trimmed.adjusted() < _PLAIN_INTEGER_DIGITS:
        return format(trimmed, "f")
    return str(trimmed)
