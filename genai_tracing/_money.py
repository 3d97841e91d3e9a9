"""How money reads: one rule for reports, the CLI, charts and budget messages.

From a dollar up, amounts show in cents (``$1.39``, ``$1,204.50``); below a dollar, where single
LLM calls and most users' days fall, three significant digits and at least cents (``$0.888``,
``$0.50``, ``$0.00412``), so a budget crossed by a fraction of a cent still reads as crossed. Money
for machines (JSON, CSV, tags) is :func:`plain`: the exact decimal, no trailing zeros, no exponent.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any


def to_decimal(value: Any) -> Decimal | None:
    """A Decimal from a number or numeric string; ``None`` for missing, NaN or non-numbers."""
    if value is None or isinstance(value, bool):
        return None
    try:
        # str() first: Decimal(0.1) would carry the float's binary error.
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def normalized(value: Decimal) -> Decimal:
    """``Decimal('0.00015000')`` -> ``Decimal('0.00015')``, never ``Decimal('1E+1')``."""
    number = value.normalize()
    return number.quantize(Decimal(1)) if number.as_tuple().exponent > 0 else number


def plain(value: Any) -> str:
    """The exact amount as a plain decimal string.

        >>> plain("0.15000000"), plain("1E+1")
        ('0.15', '10')
    """
    number = to_decimal(value)
    if number is None:
        raise ValueError(f"not an amount: {value!r}")
    return f"{normalized(number):f}"


def format_money(value: Any, *, signed: bool = False) -> str:
    """USD for people; ``-`` for a missing amount (never ``$0``).

        >>> format_money(1.3912), format_money(0.8881), format_money(0.0041163), format_money(0.5)
        ('$1.39', '$0.888', '$0.00412', '$0.50')
    """
    if isinstance(value, float) and math.isnan(value):
        return "-"
    number = to_decimal(value)
    if number is None:
        return "-"
    sign = "-" if number < 0 else "+" if signed and number > 0 else ""
    number = abs(number)
    if number == 0:
        return "$0.00"
    if number >= 1:
        return f"{sign}${number:,.2f}"
    digits = f"{normalized(number.quantize(Decimal(1).scaleb(number.adjusted() - 2))):f}"
    if digits == "1":  # 0.9996 rounds up to a dollar
        return f"{sign}$1.00"
    whole, _, fraction = digits.partition(".")
    return f"{sign}${whole}.{fraction.ljust(2, '0')}"
