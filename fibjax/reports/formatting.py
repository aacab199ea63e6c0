"""Numbers as the reports write them in their tables and text.

(Named ``formatting``, not ``format``, so that importing it never hides the built-in ``format``.)
"""

from __future__ import annotations

import math
from typing import Any


def fmt(value: Any, digits: int = 3) -> str:
    """A statistic for a table: ``digits`` significant digits; a dash for one that could not
    be computed (NaN or ``None``; the notes say why), never "nan".

    >>> fmt(0.0123456), fmt(float("nan")), fmt(7)
    ('0.0123', '–', '7')
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def factor_text(log10_ratio: float) -> str:
    """A log10 ratio as a factor: ``÷3.2`` (attention 3.2 times lower) or ``×1.5``.

    >>> factor_text(-0.5), factor_text(0.176), factor_text(float("nan"))
    ('÷3.2', '×1.5', '–')
    """
    if not math.isfinite(log10_ratio):
        return "–"
    return f"{'÷' if log10_ratio < 0 else '×'}{10 ** abs(log10_ratio):.2g}"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, in the plural unless ``n`` is 1.

    >>> count(1, "grid point"), count(3, "grid point"), count(0, "arm")
    ('1 grid point', '3 grid points', '0 arms')
    """
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
