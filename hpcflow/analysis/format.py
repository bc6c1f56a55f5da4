"""Numbers as physicists write them: ``value(error)`` with two significant digits of the error."""

from __future__ import annotations

import math

__all__ = ["value_error"]


def value_error(value: float, error: float) -> str:
    """``0.24163 +- 0.00372`` as ``0.2416(37)``; errors of 1 or more in the same units,
    ``12.3(1.4)``; a zero or non-finite error as the value alone with ``(0)`` or ``(nan)``.

    Example:
        >>> value_error(0.24163, 0.00372), value_error(21.55, 0.65), value_error(12.34, 1.4), value_error(3.0, 0.0)
        ('0.2416(37)', '21.55(65)', '12.3(1.4)', '3(0)')
    """
    if not math.isfinite(error):
        return f"{value:.6g}(nan)"
    if error == 0:
        return f"{value:.6g}(0)"
    digits = 1 - math.floor(math.log10(error))  # decimals that keep two digits of the error
    if round(error * 10.0**digits) >= 100:  # 0.0999 rounds up to 0.10
        digits -= 1
    digits = max(0, digits)
    if error >= 1:
        return f"{value:.{digits}f}({error:.{digits}f})" if digits else f"{round(value)}({round(error)})"
    return f"{value:.{digits}f}({round(error * 10**digits)})"
