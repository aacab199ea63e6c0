"""The figures of the sweep report, drawn with Matplotlib from the rows of a sweep.

Every function takes the rows of :func:`fibjax.reports.sweep_table.sweep_rows` (one dict per grid
point, the columns of :data:`fibjax.reports.sweep_table.COLUMNS`), writes one PNG to ``path`` and
returns ``path``, in the style of :mod:`fibjax.reports.compare_plots`: plain Figure objects on the
Agg canvas, written atomically (:mod:`fibjax.reports.figures`).

The effect is the median over seeds of ``log10(MSE attention / MSE vanilla)``: negative (blue)
means attention has the lower test MSE. Axes label it as a factor (``÷10``: attention ten times
lower). Only the axes of the grid that take more than one value split the figures into panels
or lines; single-valued axes are named once in the title.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from fibjax.reports import figures
from fibjax.reports.formatting import count, factor_text
from fibjax.reports.sweep_axes import (
    AXES,
    axis_values,
    check_axes,
    settings_label,
    value_text,
    varying_axes,
)

Row = Mapping[str, Any]
DECISION_COLOURS = {"attention": "tab:blue", "vanilla": "tab:red", "undecided": "0.45"}
EFFECT_LABEL = "test MSE ratio attention / vanilla, median over seeds (log scale)"


def _factor_ticks(value: float, _pos: int) -> str:
    return factor_text(value)


def _panels(rows: Sequence[Row], taken: Sequence[str]) -> list[tuple[str, list[Row]]]:
    """The rows split by every varying axis not in ``taken``: ``[(title, rows), ...]``."""
    axes = [axis for axis in varying_axes(rows) if axis not in taken]
    if not axes:
        return [("", list(rows))]
    combos = [()]
    for axis in axes:
        combos = [(*c, v) for c in combos for v in axis_values(rows, axis)]
    out = []
    for combo in combos:
        mine = [row for row in rows if tuple(row[axis] for axis in axes) == combo]
        if mine:
            out.append((settings_label(mine[0], axes), mine))
    return out


def _fixed_text(rows: Sequence[Row]) -> str:
    fixed = [axis for axis in AXES if axis not in varying_axes(rows)]
    return f"; fixed: {settings_label(rows[0], fixed)}" if fixed else ""


def _grid(n: int, most: int = 4) -> tuple[int, int]:
    cols = min(n, most)
    return math.ceil(n / cols), cols


def _check_rows(rows: Sequence[Row]) -> None:
    if not rows:
        raise ValueError("no grid points to draw")


def effect_heatmap(
    rows: Sequence[Row], *, rows_axis: str, cols_axis: str, path: Path | str, alpha: float
) -> Path:
    """Median log10 ratio over two axes of the grid, one panel per setting of the other axes.

    A diverging colour map centred at 0 (blue: attention lower); each cell is written as a
    factor, bold with an asterisk where the Holm-adjusted p is below ``alpha``; grey cells are
    settings the grid lacks or whose effect is undefined.

    Args:
      rows: the grid points (:func:`fibjax.reports.sweep_table.sweep_rows`).
      rows_axis: the axis down the rows, one of :data:`fibjax.reports.sweep_axes.AXES`.
      cols_axis: the axis across the columns, another one.
      path: the PNG to write.
      alpha: the familywise level the asterisks mark.

    Returns:
      ``path``, as a :class:`~pathlib.Path`.

    Raises:
      ValueError: an axis not in AXES, the same axis twice, no rows, or two rows in one cell.
    """
    check_axes(rows_axis, cols_axis)
    _check_rows(rows)
    r_values, c_values = axis_values(rows, rows_axis), axis_values(rows, cols_axis)
    panels = _panels(rows, (rows_axis, cols_axis))
    ratios = np.array([row["median_log10_ratio"] for row in rows], np.float64)
    finite = ratios[np.isfinite(ratios)]
    limit = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
    n_rows, n_cols = _grid(len(panels))
    fig = figures.new_figure(
        (
            max(5.0, n_cols * (0.9 * len(c_values) + 1.6) + 1.2),
            max(3.2, n_rows * (0.5 * len(r_values) + 1.2) + 1.2),
        )
    )
    grid = fig.subplots(n_rows, n_cols, squeeze=False)
    cmap = colormaps["RdBu_r"].with_extremes(bad="lightgrey")
    image = None
    for ax, (title, mine) in zip(grid.flat, panels, strict=False):
        matrix, significant = _cells(mine, rows_axis, r_values, cols_axis, c_values, alpha)
        image = ax.imshow(
            np.ma.masked_invalid(matrix), cmap=cmap, vmin=-limit, vmax=limit, aspect="auto"
        )
        _annotate(ax, matrix, significant, limit)
        ax.set_xticks(range(len(c_values)), [value_text(cols_axis, v) for v in c_values])
        ax.set_yticks(range(len(r_values)), [value_text(rows_axis, v) for v in r_values])
        ax.set_xlabel(cols_axis)
        ax.set_ylabel(rows_axis)
        ax.set_title(title, fontsize="small")
    for ax in grid.flat[len(panels) :]:
        ax.set_visible(False)
    cbar = fig.colorbar(image, ax=grid.ravel().tolist(), format=FuncFormatter(_factor_ticks))
    cbar.set_label("MSE ratio attention / vanilla (median)\nblue: attention lower, red: higher")
    fig.suptitle(
        f"Attention against vanilla by {rows_axis} and {cols_axis}{_fixed_text(rows)}\n"
        f"bold with *: Holm-adjusted p < {alpha} over {count(len(rows), 'grid point')};"
        " grey: no seed where both stayed finite, or not in the grid",
        fontsize="medium",
    )
    return figures.save(fig, path)


def _cells(
    rows: Sequence[Row], rows_axis: str, r_values: list, cols_axis: str, c_values: list, alpha
) -> tuple[np.ndarray, np.ndarray]:
    """``<float64>[r, c]`` median log10 ratios (NaN: none) and ``<bool>[r, c]`` significance."""
    matrix = np.full((len(r_values), len(c_values)), np.nan)
    significant = np.zeros(matrix.shape, bool)
    filled = np.zeros(matrix.shape, bool)
    for row in rows:
        i, j = r_values.index(row[rows_axis]), c_values.index(row[cols_axis])
        if filled[i, j]:
            raise ValueError(f"two grid points share the heat map cell {settings_label(row, AXES)}")
        filled[i, j] = True
        matrix[i, j] = row["median_log10_ratio"]
        significant[i, j] = row["p_holm"] < alpha
    return matrix, significant


def _annotate(ax: Axes, matrix: np.ndarray, significant: np.ndarray, limit: float) -> None:
    for (i, j), value in np.ndenumerate(matrix):
        if not math.isfinite(value):
            continue
        ax.text(
            j,
            i,
            factor_text(value) + ("*" if significant[i, j] else ""),
            ha="center",
            va="center",
            fontsize="small",
            fontweight="bold" if significant[i, j] else "normal",
            color="white" if abs(value) > 0.6 * limit else "black",
        )


def _ratio_errors(rows: Sequence[Row]) -> tuple[np.ndarray, np.ndarray]:
    """The ratios and ``<float64>[2, n]`` distances to the interval's ends (0 where undefined)."""
    y = np.array([row["median_log10_ratio"] for row in rows], np.float64)
    low = np.array([row["ratio_ci_low"] for row in rows], np.float64)
    high = np.array([row["ratio_ci_high"] for row in rows], np.float64)
    errors = np.nan_to_num(np.stack([y - low, high - y]), nan=0.0)
    return y, np.maximum(errors, 0.0)


def _decision_legend() -> list[Line2D]:
    marker = {"marker": "o", "linestyle": "none", "color": "0.3"}
    return [
        Line2D([], [], label="filled: decided (Holm-adjusted p < α)", **marker),
        Line2D([], [], label="open: undecided", markerfacecolor="white", **marker),
    ]


def effect_by_window(rows: Sequence[Row], path: Path | str) -> Path:
    """Median log10 ratio against the window length, with its 95% interval, one line per
    (cell, attention form); other varying axes are panels. Filled markers: decided points.

    Args:
      rows: the grid points (:func:`fibjax.reports.sweep_table.sweep_rows`).
      path: the PNG to write.

    Returns:
      ``path``, as a :class:`~pathlib.Path`.
    """
    _check_rows(rows)
    windows = axis_values(rows, "window")
    pairs = list(dict.fromkeys((row["cell"], row["model"]) for row in rows))
    panels = _panels(rows, ("window", "cell", "model"))
    n_rows, n_cols = _grid(len(panels), 3)
    fig = figures.new_figure((max(figures.FIGSIZE[0], 4.2 * n_cols), 3.2 * n_rows + 1.4))
    grid = fig.subplots(n_rows, n_cols, squeeze=False, sharey=True)
    step = min(0.1, 0.6 / len(pairs))  # pairs side by side at each window, bars apart
    handles = [
        Line2D([], [], color=figures.model_colour(k), marker="o", label=f"{cell}, {model}")
        for k, (cell, model) in enumerate(pairs)
    ]
    for ax, (title, mine) in zip(grid.flat, panels, strict=False):
        for k, pair in enumerate(pairs):
            line = sorted(
                (row for row in mine if (row["cell"], row["model"]) == pair),
                key=lambda row: row["window"],
            )
            if not line:
                continue
            x = (
                np.array([windows.index(row["window"]) for row in line])
                + (k - (len(pairs) - 1) / 2) * step
            )
            y, errors = _ratio_errors(line)
            colour = figures.model_colour(k)
            ax.errorbar(
                x, y, yerr=errors, color=colour, capsize=2, marker="o", markerfacecolor="white"
            )
            decided = np.array([row["decision"] != "undecided" for row in line])
            # Above the error bar's own open markers, which matplotlib draws over its zorder.
            ax.plot(x[decided], y[decided], "o", color=colour, zorder=3)
        ax.axhline(0.0, color="0.3", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(windows)), [str(w) for w in windows])
        ax.set_xlabel("window length")
        ax.yaxis.set_major_formatter(FuncFormatter(_factor_ticks))
        ax.set_title(title, fontsize="small")
        ax.grid(True, axis="y", alpha=0.3)
    for ax in grid.flat[len(panels) :]:
        ax.set_visible(False)
    for ax in grid[:, 0]:
        ax.set_ylabel("MSE ratio attention / vanilla\n(median, log scale; 95% interval)")
    fig.legend(
        handles=handles + _decision_legend(),
        loc="outside lower center",
        ncols=3,
        fontsize="small",
        frameon=False,
    )
    # The fixed settings on a line of their own: on one, a narrow grid's title was clipped.
    fixed = _fixed_text(rows).removeprefix("; ")
    fig.suptitle(
        "Effect of attention by window length (below the dashed line: attention lower)"
        + (f"\n{fixed}" if fixed else ""),
        fontsize="medium",
    )
    return figures.save(fig, path)


def forest(rows: Sequence[Row], path: Path | str) -> Path:
    """Every grid point sorted by its median log10 ratio (attention's best on top), with its
    95% interval; colour and filled markers show the decision. Points without an estimate are
    left out and counted in the title.

    Args:
      rows: the grid points (:func:`fibjax.reports.sweep_table.sweep_rows`).
      path: the PNG to write.

    Returns:
      ``path``, as a :class:`~pathlib.Path`.
    """
    _check_rows(rows)
    axes = varying_axes(rows)
    shown = [row for row in rows if math.isfinite(row["median_log10_ratio"])]
    shown.sort(key=lambda row: row["median_log10_ratio"])
    labels = [settings_label(row, axes) if axes else "the only grid point" for row in shown]
    width = 5.0 + 0.07 * max((len(label) for label in labels), default=0)
    fig = figures.new_figure((width, 2.4 + 0.24 * max(len(shown), 1)))
    ax = fig.add_subplot()
    y, errors = _ratio_errors(shown)
    for position, row in enumerate(shown):
        colour = DECISION_COLOURS[row["decision"]]
        ax.errorbar(
            y[position],
            position,
            xerr=errors[:, [position]],
            color=colour,
            capsize=2,
            marker="o",
            markerfacecolor=colour if row["decision"] != "undecided" else "white",
        )
    ax.set_yticks(range(len(shown)), labels, fontsize="small")
    ax.set_ylim(len(shown) - 0.5, -0.5)  # the strongest effect for attention on top
    ax.axvline(0.0, color="0.3", linestyle="--", linewidth=1)
    ax.xaxis.set_major_formatter(FuncFormatter(_factor_ticks))
    ax.set_xlabel(EFFECT_LABEL + "\nleft of the dashed line: attention lower")
    ax.grid(True, axis="x", alpha=0.3)
    left_out = len(rows) - len(shown)
    note = f"; {left_out} without an estimate not shown" if left_out else ""
    lines = [
        f"Every grid point by effect, with 95% intervals{note}",
        _fixed_text(rows).removeprefix("; "),
        "blue: attention lower, red: vanilla lower, grey: undecided (Holm over the grid)",
    ]
    fig.suptitle("\n".join(line for line in lines if line), fontsize="medium")
    fig.legend(
        handles=_decision_legend(),
        loc="outside lower center",
        ncols=2,
        fontsize="small",
        frameon=False,
    )
    return figures.save(fig, path)
