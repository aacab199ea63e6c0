"""The axes of a sweep's grid: their names and types, and the rows' values on them as text.

Shared by the sweep's table (:mod:`fibjax.reports.sweep_table`), report
(:mod:`fibjax.reports.sweep_report`) and figures (:mod:`fibjax.reports.sweep_plots`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

AXES = ("cell", "model", "hidden", "window", "scaling", "learning_rate")
# The type of each axis' values: what a CSV field is parsed back to.
AXIS_TYPES = {
    "cell": str,
    "model": str,
    "hidden": int,
    "window": int,
    "scaling": str,
    "learning_rate": float,
}


def axis_values(rows: Sequence[Mapping[str, Any]], axis: str) -> list[Any]:
    """The distinct values of ``axis`` in ``rows``: numbers ascending, names in first-seen order.

    >>> axis_values([{"window": 12}, {"window": 6}, {"window": 12}], "window")
    [6, 12]
    """
    values = list(dict.fromkeys(row[axis] for row in rows))
    return values if AXIS_TYPES[axis] is str else sorted(values)


def varying_axes(rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The axes of :data:`AXES` that take more than one value in ``rows``, in AXES order."""
    return tuple(axis for axis in AXES if len(axis_values(rows, axis)) > 1)


def check_axes(rows_axis: str, cols_axis: str) -> None:
    """Raises ``ValueError`` (one line) unless both are axes of :data:`AXES` and differ."""
    for name, axis in (("rows_axis", rows_axis), ("cols_axis", cols_axis)):
        if axis not in AXES:
            raise ValueError(f"{name}={axis!r} is not an axis of the sweep; choose one of {AXES}")
    if rows_axis == cols_axis:
        raise ValueError(f"rows_axis and cols_axis are both {rows_axis!r}; choose two axes")


def value_text(axis: str, value: Any) -> str:
    """A setting's value as the report writes it (learning rates in ``%g``)."""
    return f"{value:g}" if AXIS_TYPES[axis] is float else str(value)


def settings_label(row: Mapping[str, Any], axes: Sequence[str]) -> str:
    """``"cell=gru, window=6"``: the row's settings on ``axes``."""
    return ", ".join(f"{axis}={value_text(axis, row[axis])}" for axis in axes)
