"""The sweep's statistics, tables, figures and ``report.md``: per-seed test MSEs in, files out.

A *grid point* is one attention form against the vanilla model of the same cell, hidden size,
window, scaling and learning rate, trained under the same seeds (:class:`PointResult`). Each
point gets the paired statistics of :func:`fibjax.stats.paired_tests` (:func:`point_row`); the
primary Wilcoxon p-values are corrected over the whole grid by Holm's method, which decides,
with Benjamini–Hochberg q-values beside them (:func:`sweep_rows`). :func:`write_sweep_report`
writes ``sweep.csv``, ``summary.json``, the figures and ``report.md`` together, so a failure
leaves the previous report's files as they were.

Nothing here trains: the caller hands in the MSEs (diverged seeds as NaN, as
:func:`fibjax.report.stats_input` gives them).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fibjax import stats, storage
from fibjax.report import fmt

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
COLUMNS = (
    *AXES,
    "n_seeds",
    "n_pairs",
    "attention_diverged",
    "vanilla_diverged",
    "attention_median_mse",
    "vanilla_median_mse",
    "median_log10_ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "ratio_ci_method",
    "share_attention_lower",
    "share_ci_low",
    "share_ci_high",
    "p_wilcoxon",
    "p_holm",
    "q_bh",
    "decision",
)
_INT_COLUMNS = ("n_seeds", "n_pairs", "attention_diverged", "vanilla_diverged")
_FLOAT_COLUMNS = tuple(
    c for c in COLUMNS[len(AXES) :] if c not in (*_INT_COLUMNS, "ratio_ci_method", "decision")
)
_PROBABILITY_COLUMNS = ("share_attention_lower", "share_ci_low", "share_ci_high")
_PROBABILITY_COLUMNS += ("p_wilcoxon", "p_holm", "q_bh")
CI_METHODS = ("BCa", "percentile")
DECISIONS = ("attention", "vanilla", "undecided")
FIGURES = {
    "effect_heatmap": "effect_heatmap.png",
    "effect_by_window": "effect_by_window.png",
    "forest": "forest.png",
}
SWEEP_FORMAT = "fibjax-sweep-report-1"
_TINY = np.finfo(np.float64).tiny


@dataclasses.dataclass(frozen=True, eq=False)
class PointResult:
    """One grid point's test MSEs, both models under the same seeds; validated when built.

    Attributes:
      settings: ``{axis: value}`` with exactly the keys of :data:`AXES`; ``cell``, ``model``
        (the attention form) and ``scaling`` are non-empty strings, ``hidden`` and ``window``
        positive integers, ``learning_rate`` a positive finite number. Stored in AXES order,
        with plain Python types.
      seeds: ``<int64>[n]`` distinct seeds, ``n >= 1``.
      attention_mse: ``<float64>[n]`` the attention model's test MSE under each seed; NaN for
        a diverged seed, otherwise finite and >= 0.
      vanilla_mse: ``<float64>[n]`` the vanilla model's, likewise.
    """

    settings: dict[str, Any]
    seeds: np.ndarray
    attention_mse: np.ndarray
    vanilla_mse: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", _checked_settings(self.settings))
        seeds = np.asarray(self.seeds)
        if seeds.ndim != 1 or seeds.size == 0 or not np.issubdtype(seeds.dtype, np.integer):
            raise ValueError(f"seeds must be a non-empty 1-D array of integers, got {seeds!r}")
        if np.unique(seeds).size != seeds.size:
            raise ValueError(f"seeds must be distinct, got {seeds.tolist()}")
        object.__setattr__(self, "seeds", seeds.astype(np.int64))
        for name in ("attention_mse", "vanilla_mse"):
            values = np.asarray(getattr(self, name), dtype=np.float64)
            if values.shape != seeds.shape:
                raise ValueError(
                    f"{name} must hold one MSE per seed ({seeds.size}), got shape {values.shape}"
                )
            if np.isinf(values).any() or (values < 0).any():
                raise ValueError(
                    f"{name} at {_settings_text(self.settings)} holds a negative or infinite"
                    " MSE; only NaN (a diverged seed) or a finite value >= 0 is a test MSE"
                )
            object.__setattr__(self, name, values)


def _checked_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(settings, Mapping) or set(settings) != set(AXES):
        keys = sorted(settings) if isinstance(settings, Mapping) else settings
        raise ValueError(f"settings must have exactly the keys {list(AXES)}, got {keys}")
    out = {}
    for axis in AXES:
        value, kind = settings[axis], AXIS_TYPES[axis]
        if kind is str:
            ok = isinstance(value, str) and value.strip() == value != ""
        elif kind is int:
            ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0
        else:
            ok = (
                isinstance(value, (int, float, np.integer, np.floating))
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value > 0
            )
        if not ok:
            what = {str: "a non-empty string", int: "a positive integer"}.get(
                kind, "a positive finite number"
            )
            raise ValueError(f"settings[{axis!r}] = {value!r} is invalid: must be {what}")
        out[axis] = kind(value)
    return out


def _settings_text(settings: Mapping[str, Any]) -> str:
    return ", ".join(f"{axis}={settings[axis]}" for axis in AXES if axis in settings)


# ------------------------------------------------------------------------------- statistics


def _median_mse(values: np.ndarray) -> float:
    """``10 ** median(log10 MSE)`` over the valid seeds, on stats' log scale (0 -> tiny)."""
    valid = values[np.isfinite(values)]
    if valid.size == 0:
        return math.nan
    return float(10.0 ** float(np.median(np.log10(np.maximum(valid, _TINY)))))


def point_row(point: PointResult, config: stats.StatsConfig) -> dict[str, Any]:
    """One grid point's statistics, the primary test's p-value not yet corrected.

    The paired statistics are :func:`fibjax.stats.paired_tests` of ``attention_mse`` against
    ``vanilla_mse``, so they equal :func:`fibjax.stats.compare`'s under the same config. A
    median MSE is ``10 ** median(log10 MSE)`` over the model's valid seeds, the median
    :func:`fibjax.stats.describe_sample` gives, in MSE units (for an even count, the geometric
    mean of the two middle values).

    Args:
      point: the grid point's MSEs.
      config: levels, resample count and seed of the statistics.

    Returns:
      ``{column: value}`` for the columns of :data:`COLUMNS` up to ``p_wilcoxon``: the settings,
      counts (int), statistics (float, NaN when undefined) and ``ratio_ci_method``
      (``"BCa"``, ``"percentile"`` or None).

    Example:
      >>> point = PointResult(
      ...     settings=dict(cell="gru", model="dot", hidden=8, window=6, scaling="log",
      ...                   learning_rate=0.01),
      ...     seeds=np.arange(5),
      ...     attention_mse=[1e-4, 2e-4, 3e-4, 4e-4, float("nan")],
      ...     vanilla_mse=[1e-3, 2e-3, 3e-3, 4e-3, 5e-3])
      >>> row = point_row(point, stats.StatsConfig(n_resamples=200))
      >>> row["n_pairs"], row["attention_diverged"], row["median_log10_ratio"], row["p_wilcoxon"]
      (4, 1, -1.0, 0.125)
    """
    paired = stats.paired_tests(point.attention_mse, point.vanilla_mse, config)
    ratio, share = paired["median_log10_ratio"], paired["prob_a_wins"]
    return {
        **point.settings,
        "n_seeds": int(point.seeds.size),
        "n_pairs": int(paired["n_pairs"]),
        "attention_diverged": int(np.isnan(point.attention_mse).sum()),
        "vanilla_diverged": int(np.isnan(point.vanilla_mse).sum()),
        "attention_median_mse": _median_mse(point.attention_mse),
        "vanilla_median_mse": _median_mse(point.vanilla_mse),
        "median_log10_ratio": float(ratio["estimate"]),
        "ratio_ci_low": float(ratio["ci"]["low"]),
        "ratio_ci_high": float(ratio["ci"]["high"]),
        "ratio_ci_method": ratio["ci"]["method"],
        "share_attention_lower": float(share["estimate"]),
        "share_ci_low": float(share["ci"]["low"]),
        "share_ci_high": float(share["ci"]["high"]),
        "p_wilcoxon": float(paired["wilcoxon"]["pvalue"]),
    }


def decide(p_holm: float, median_log10_ratio: float, alpha: float) -> str:
    """``"attention"``/``"vanilla"`` when the Holm-adjusted p is below ``alpha``, by the sign
    of the median log10 ratio; else ``"undecided"`` (also for NaN or a zero ratio).

    >>> decide(0.01, -0.5, 0.05), decide(0.01, 0.5, 0.05), decide(0.2, -0.5, 0.05)
    ('attention', 'vanilla', 'undecided')
    """
    if not (p_holm < alpha) or not math.isfinite(median_log10_ratio):
        return "undecided"
    if median_log10_ratio < 0:
        return "attention"
    return "vanilla" if median_log10_ratio > 0 else "undecided"


def sweep_rows(points: Sequence[PointResult], config: stats.StatsConfig) -> list[dict[str, Any]]:
    """Every grid point's row, the primary p-values corrected over the whole grid.

    ``p_holm`` is :func:`fibjax.stats.holm` over all points' Wilcoxon p-values (the
    familywise, primary decision at ``config.alpha``); ``q_bh`` the Benjamini–Hochberg
    q-values (:func:`fibjax.stats.benjamini_hochberg`), given beside them; ``decision`` as
    :func:`decide`.

    Args:
      points: the grid points, each with distinct settings.
      config: levels, resample count and seed of the statistics.

    Returns:
      One ``{column: value}`` per point with every column of :data:`COLUMNS`, in the order of
      ``points``.

    Raises:
      ValueError: no points, or two with the same settings.
    """
    if not points:
        raise ValueError("the sweep has no grid points")
    seen = set()
    for point in points:
        key = tuple(point.settings.values())
        if key in seen:
            raise ValueError(
                f"two grid points have the same settings: {_settings_text(point.settings)}"
            )
        seen.add(key)
    rows = [point_row(point, config) for point in points]
    p = [row["p_wilcoxon"] for row in rows]
    for row, p_holm, q_bh in zip(rows, stats.holm(p), stats.benjamini_hochberg(p), strict=True):
        row["p_holm"], row["q_bh"] = float(p_holm), float(q_bh)
        row["decision"] = decide(row["p_holm"], row["median_log10_ratio"], config.alpha)
    return rows


# ------------------------------------------------------------------------------------ CSV


def _field(value: Any) -> str:
    # An empty field is a value that could not be computed: NaN, or no interval method.
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_sweep_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Writes ``rows`` to ``path`` atomically, one line per grid point, columns :data:`COLUMNS`.

    Floats are written with ``repr`` (read back bit for bit); a NaN statistic, or a missing
    ``ratio_ci_method``, is an empty field.
    """
    storage.write_csv(Path(path), COLUMNS, [[_field(row[c]) for c in COLUMNS] for row in rows])


def read_sweep_csv(path: Path) -> list[dict[str, Any]]:
    """Reads a ``sweep.csv`` back with typed values (empty fields as NaN or None).

    Raises:
      fibjax.storage.ResultFileError: the file is missing, has other columns, a value that is
        not of its column's type or range, or two rows with the same settings.
    """
    path = Path(path)
    rows, seen = [], set()
    for number, raw in enumerate(storage.read_csv(path, COLUMNS), start=2):
        try:
            row = _parse_row(raw)
        except ValueError as error:
            raise storage.ResultFileError(f"{path}: line {number}: {error}") from None
        key = tuple(row[axis] for axis in AXES)
        if key in seen:
            raise storage.ResultFileError(f"{path}: line {number} repeats the settings {key}")
        seen.add(key)
        rows.append(row)
    return rows


def _parse_row(raw: Mapping[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = _checked_settings(_parse_settings(raw))
    for column in _INT_COLUMNS:
        row[column] = _parse(column, raw[column], int)
        if row[column] < 0:
            raise ValueError(f"{column} = {row[column]} is negative")
    for column in _FLOAT_COLUMNS:
        row[column] = _parse(column, raw[column], float) if raw[column] else math.nan
        if column in _PROBABILITY_COLUMNS and not (
            math.isnan(row[column]) or 0 <= row[column] <= 1
        ):
            raise ValueError(f"{column} = {row[column]} is not a probability")
    row["ratio_ci_method"] = raw["ratio_ci_method"] or None
    if row["ratio_ci_method"] not in (*CI_METHODS, None):
        raise ValueError(f"ratio_ci_method {raw['ratio_ci_method']!r} is not one of {CI_METHODS}")
    if raw["decision"] not in DECISIONS:
        raise ValueError(f"decision {raw['decision']!r} is not one of {DECISIONS}")
    row["decision"] = raw["decision"]
    if max(row["attention_diverged"], row["vanilla_diverged"], row["n_pairs"]) > row["n_seeds"]:
        raise ValueError("more diverged seeds or pairs than seeds")
    return {column: row[column] for column in COLUMNS}


def _parse_settings(raw: Mapping[str, str]) -> dict[str, Any]:
    out = {}
    for axis in AXES:
        text, kind = raw[axis], AXIS_TYPES[axis]
        out[axis] = _parse(axis, text, kind)
    return out


def _parse(column: str, text: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        what = {int: "an integer", float: "a number"}[kind]
        raise ValueError(f"{column} = {text!r} is not {what}") from None


# ------------------------------------------------------------------------------ the grid


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


# Each axis in words: singular and plural noun; scaling reads "log scaling", not "scaling log".
_NOUNS = {
    "cell": ("cell", "cells"),
    "model": ("attention form", "attention forms"),
    "hidden": ("hidden size", "hidden sizes"),
    "window": ("window", "windows"),
    "scaling": ("scaling", "scalings"),
    "learning_rate": ("learning rate", "learning rates"),
}


def _join(words: Sequence[str], last: str = "and") -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def _boxes(rows: Sequence[Mapping[str, Any]], axes: Sequence[str]) -> list[dict[str, frozenset]]:
    """The rows' settings on ``axes`` merged into products of value sets, each exactly a union
    of rows: two boxes merge on one axis only when they agree on every other axis."""
    boxes = [{axis: frozenset([row[axis]]) for axis in axes} for row in rows]
    changed = True
    while changed:
        changed = False
        for axis in reversed(axes):  # the innermost axes (learning rate, scaling) first
            merged: dict[tuple, dict[str, frozenset]] = {}
            for box in boxes:
                key = tuple(box[a] for a in axes if a != axis)
                if key in merged:
                    merged[key] = {**merged[key], axis: merged[key][axis] | box[axis]}
                    changed = True
                else:
                    merged[key] = box
            boxes = list(merged.values())
    return boxes


def _box_text(box: Mapping[str, frozenset], grid: Mapping[str, list]) -> str:
    parts = []
    for axis, values in box.items():
        ordered = [value_text(axis, v) for v in grid[axis] if v in values]
        singular, plural = _NOUNS[axis]
        if len(ordered) == len(grid[axis]):
            parts.append(f"every {singular} ({', '.join(ordered)})")
        elif axis == "scaling":
            parts.append(f"{_join(ordered)} scaling")
        else:
            noun = singular if len(ordered) == 1 else plural
            parts.append(f"{noun} {_join(ordered, 'or')}")
    return ", ".join(parts)


def decision_groups(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Each decision's grid points in words, grouped: ``{decision: [text, ...]}``.

    Only the axes that vary in the grid are named; points that differ on one axis alone are
    merged ("every window (6, 12, 24)" when they cover all of the grid's values).

    >>> rows = [dict(cell="gru", model="dot", hidden=8, window=w, scaling=s,
    ...              learning_rate=0.01, decision="attention" if s == "log" else "undecided")
    ...         for w in (6, 12) for s in ("minmax", "log")]
    >>> decision_groups(rows)["attention"]
    ['every window (6, 12), log scaling']
    """
    axes = varying_axes(rows)
    grid = {axis: axis_values(rows, axis) for axis in axes}
    out = {}
    for decision in DECISIONS:
        mine = [row for row in rows if row["decision"] == decision]
        if not axes:
            out[decision] = ["the only grid point"] if mine else []
            continue
        out[decision] = [_box_text(box, grid) for box in _boxes(mine, axes)]
    return out


# ------------------------------------------------------------------------------ Markdown


def factor_text(log10_ratio: float) -> str:
    """A log10 ratio as a factor: ``÷3.2`` (attention 3.2 times lower) or ``×1.5``.

    >>> factor_text(-0.5), factor_text(0.176), factor_text(float("nan"))
    ('÷3.2', '×1.5', '–')
    """
    if not math.isfinite(log10_ratio):
        return "–"
    return f"{'÷' if log10_ratio < 0 else '×'}{10 ** abs(log10_ratio):.2g}"


def correction_text(n_points: int, alpha: float) -> str:
    """The multiple-comparison correction in words."""
    return (
        f"Holm's method over the {n_points} grid points, familywise level α = {alpha};"
        " Benjamini–Hochberg q-values also given"
    )


def render_markdown(
    rows: Sequence[Mapping[str, Any]],
    *,
    alpha: float,
    n_seeds: int | tuple[int, int],
    epochs: int | None,
    description: Mapping[str, Any],
    figures: Mapping[str, str],
    code_text: str,
    figure_notes: Sequence[str] = (),
    stats_seed: int | None = None,
    n_resamples: int | None = None,
) -> str:
    """The sweep's report as Markdown, readable on its own.

    Args:
      rows: :func:`sweep_rows` (or :func:`read_sweep_csv`) of every grid point.
      alpha: the familywise level of the Holm-corrected decisions.
      n_seeds: seeds per grid point, or ``(fewest, most)`` when points differ.
      epochs: training epochs of every model (None: not stated).
      description: the sweep's configuration and versions; listed as given.
      figures: ``{name: file}`` of the figures drawn (names of :data:`FIGURES`).
      code_text: what code trained the models, in words.
      figure_notes: why figures were left out.
      stats_seed: seed of the bootstrap and permutation resampling (None: not stated).
      n_resamples: resamples of each bootstrap (None: not stated).

    Returns:
      The Markdown text, ending in a newline.
    """
    parts = [
        _md_head(rows, alpha),
        _md_protocol(rows, alpha, n_seeds, epochs, code_text, stats_seed, n_resamples),
        _md_table(rows),
        _md_figures(figures, figure_notes, alpha),
        _md_configuration(description),
        _md_reproduce(),
    ]
    return "\n\n".join(parts) + "\n"


_HEADINGS = {
    "attention": "Attention has the lower test MSE",
    "vanilla": "Vanilla has the lower test MSE",
    "undecided": "Undecided (no detectable difference)",
}


def _md_head(rows: Sequence[Mapping[str, Any]], alpha: float) -> str:
    counts = {d: sum(row["decision"] == d for row in rows) for d in DECISIONS}
    fixed = [a for a in AXES if a not in varying_axes(rows)]
    fixed_text = f"\n\nFixed across the grid: {settings_label(rows[0], fixed)}." if fixed else ""
    parts = [
        f"# fibjax sweep: attention against vanilla over {len(rows)} grid points\n\n"
        "**Question.** At which settings does an attention pooling lower the test MSE of a"
        " recurrent network predicting the next Fibonacci term, against the same network"
        " reading its last state (vanilla)?\n\n"
        f"**Answer.** Of {len(rows)} grid points, attention has the lower test MSE at"
        f" {counts['attention']}, vanilla at {counts['vanilla']}, and {counts['undecided']}"
        f" are undecided ({correction_text(len(rows), alpha)}).{fixed_text}"
    ]
    for decision, texts in decision_groups(rows).items():
        if texts:
            bullets = "\n".join(f"- {text}" for text in texts)
            parts.append(f"### {_HEADINGS[decision]} ({counts[decision]} grid points)\n\n{bullets}")
    return "\n\n".join(parts)


def _md_protocol(rows, alpha, n_seeds, epochs, code_text, stats_seed, n_resamples) -> str:
    seeds = (
        f"{n_seeds[0]} to {n_seeds[1]} seeds" if isinstance(n_seeds, tuple) else f"{n_seeds} seeds"
    )
    trained = f" trained {epochs} epochs" if epochs is not None else ""
    resampling = []
    if n_resamples is not None:
        resampling.append(f"{n_resamples} resamples")
    if stats_seed is not None:
        resampling.append(f"seed {stats_seed}")
    resampling_text = f" ({', '.join(resampling)})" if resampling else ""
    diverged = sum(row["attention_diverged"] + row["vanilla_diverged"] for row in rows)
    return (
        "## Protocol\n\n"
        "Each grid point compares one attention form with the vanilla model of the same cell,"
        f" hidden size, window, scaling and learning rate, both{trained} under the same {seeds}"
        " (paired by seed). Primary test, named in advance: the two-sided Wilcoxon signed-rank"
        " test on the paired log10 test MSE, one per grid point; the decisions use"
        f" {correction_text(len(rows), alpha)}. A point is decided for the model with the lower"
        " median when its Holm-adjusted p is below α. Effect size: the median over seeds of"
        " log10(MSE attention / MSE vanilla), with a 95% bootstrap interval (BCa, percentile"
        f" where BCa is undefined){resampling_text}; share of seeds where attention's MSE is"
        f" lower, with a Wilson 95% interval. {diverged} diverged seed result(s) were left out;"
        f" paired statistics use the seeds where both models stayed finite. {code_text}"
    )


def _md_table(rows: Sequence[Mapping[str, Any]]) -> str:
    axes = varying_axes(rows)
    head = [
        *axes,
        "seeds (pairs)",
        "diverged att / van",
        "median MSE attention",
        "median MSE vanilla",
        "MSE ratio att/van, median [95% CI]",
        "share att lower [95% CI]",
        "p",
        "p Holm",
        "q BH",
        "decision",
    ]
    lines = [
        "## Every grid point\n",
        "÷k: attention's test MSE is k times lower than vanilla's; ×k: k times higher.\n",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(axes) + "---:|" * (len(head) - len(axes) - 1) + "---|",
    ]
    for row in rows:
        decision = row["decision"] if row["decision"] == "undecided" else f"**{row['decision']}**"
        cells = [
            *(value_text(axis, row[axis]) for axis in axes),
            f"{row['n_seeds']} ({row['n_pairs']})",
            f"{row['attention_diverged']} / {row['vanilla_diverged']}",
            fmt(row["attention_median_mse"]),
            fmt(row["vanilla_median_mse"]),
            f"{factor_text(row['median_log10_ratio'])} [{factor_text(row['ratio_ci_low'])},"
            f" {factor_text(row['ratio_ci_high'])}]",
            f"{fmt(row['share_attention_lower'], 2)} [{fmt(row['share_ci_low'], 2)},"
            f" {fmt(row['share_ci_high'], 2)}]",
            fmt(row["p_wilcoxon"]),
            fmt(row["p_holm"]),
            fmt(row["q_bh"]),
            decision,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _md_figures(figures: Mapping[str, str], notes: Sequence[str], alpha: float) -> str:
    captions = {
        "effect_heatmap": "Median log10 test-MSE ratio (attention/vanilla) over two axes of the"
        f" grid; blue: attention lower; bold with an asterisk: Holm-adjusted p < {alpha}.",
        "effect_by_window": "Median log10 ratio against the window length with its 95% interval,"
        " one line per cell and attention form; filled markers: Holm-adjusted p < α.",
        "forest": "Every grid point sorted by its effect, with its 95% interval; filled markers:"
        " Holm-adjusted p < α.",
    }
    parts = ["## Figures"]
    parts.extend(f"{captions[name]}\n\n![{name}]({file})" for name, file in figures.items())
    parts.extend(f"{note}." for note in notes)
    return "\n\n".join(parts)


def _md_configuration(description: Mapping[str, Any]) -> str:
    lines = ["## Configuration\n"]
    for key, value in description.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        lines.append(f"- **{key}**: `{text}`")
    return "\n".join(lines)


def _md_reproduce() -> str:
    return (
        "## Reproduce\n\n"
        "`sweep.csv` holds one row per grid point (settings, counts, medians, effect with its"
        " interval, share lower, raw and corrected p-values, decision; an empty field is a"
        " statistic that could not be computed). `summary.json` holds the same rows, the"
        " configuration and versions as given by the sweep, the statistics' settings and the"
        " decision counts. Every model's per-seed results are saved in the folder's"
        " `arm_*.npz` files with the configuration and code that trained them;"
        " `fibjax report DIR` rebuilds all of this from them, and `fibjax sweep --resume DIR`"
        " trains only what a stopped sweep is missing."
    )


# --------------------------------------------------------------------------- the files


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _check_json(description: Any) -> None:
    if not isinstance(description, Mapping):
        raise ValueError(f"description must be a dict, got {type(description).__name__}")
    try:
        json.dumps(description, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"description is not JSON-ready: {error}") from None


def _draw_figures(
    staging: storage.Staging, rows: list[dict[str, Any]], rows_axis: str, cols_axis: str, alpha
) -> tuple[dict[str, str], list[str]]:
    """Draws every figure the rows allow into ``staging``; a note says why one is left out."""
    # sweep_plots imports this module's axes, so it is imported when first needed.
    from fibjax import sweep_plots

    for file in FIGURES.values():
        staging.remove(file)  # an older figure stays only if drawn again below
    if not any(math.isfinite(row["median_log10_ratio"]) for row in rows):
        return {}, [
            "No figure is drawn: no grid point has a seed where both models stayed finite, so"
            " no effect was estimated"
        ]
    drawn, notes = {}, []
    sweep_plots.effect_heatmap(
        rows,
        rows_axis=rows_axis,
        cols_axis=cols_axis,
        path=staging.path(FIGURES["effect_heatmap"]),
        alpha=alpha,
    )
    drawn["effect_heatmap"] = FIGURES["effect_heatmap"]
    windows = axis_values(rows, "window")
    if len(windows) > 1:
        sweep_plots.effect_by_window(rows, staging.path(FIGURES["effect_by_window"]))
        drawn["effect_by_window"] = FIGURES["effect_by_window"]
    else:
        notes.append(
            f"The effect-by-window figure is not drawn: the grid has one window ({windows[0]})"
        )
    sweep_plots.forest(rows, staging.path(FIGURES["forest"]))
    drawn["forest"] = FIGURES["forest"]
    return drawn, notes


def write_sweep_report(
    out_dir: Path,
    points: Sequence[PointResult],
    *,
    alpha: float,
    stats_seed: int,
    rows_axis: str,
    cols_axis: str,
    description: Mapping[str, Any],
    code_text: str,
    epochs: int | None = None,
    n_resamples: int = stats.StatsConfig.n_resamples,
) -> dict[str, Any]:
    """Writes ``sweep.csv``, ``summary.json``, the figures and ``report.md`` into ``out_dir``.

    Every file is staged and moved in together (:class:`fibjax.storage.Staging`): a failure
    leaves the previous report's files as they were. Figures with nothing to show are left
    out (an older one of the same name removed) and the report says why.

    Args:
      out_dir: the folder to write to (created if missing).
      points: every grid point's MSEs.
      alpha: familywise level of the Holm-corrected decisions.
      stats_seed: seed of the resampling statistics.
      rows_axis: the heat map's row axis, one of :data:`AXES`.
      cols_axis: the heat map's column axis, another one.
      description: the sweep's configuration and versions, JSON-ready; kept verbatim in
        ``summary.json``.
      code_text: what code trained the models, in words (for the report).
      epochs: training epochs of every model, for the report (None: not stated).
      n_resamples: resamples of each bootstrap and permutation test.

    Returns:
      The summary written to ``summary.json``: ``format``, ``description``, ``statistics``
      (primary test, correction, family size, α, seed, resamples), ``rows`` (NaN as None),
      ``decisions`` (count of each), ``figures`` (``{name: file}``), ``figure_notes``.

    Raises:
      ValueError: a bad axis, α, seed, description or set of points (one line).
    """
    config = stats.StatsConfig(alpha=alpha, seed=stats_seed, n_resamples=n_resamples)
    check_axes(rows_axis, cols_axis)
    _check_json(description)
    rows = sweep_rows(points, config)
    counts = sorted({row["n_seeds"] for row in rows})
    n_seeds = counts[0] if len(counts) == 1 else (counts[0], counts[-1])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with storage.Staging(out_dir) as staging:
        figures, notes = _draw_figures(staging, rows, rows_axis, cols_axis, alpha)
        write_sweep_csv(staging.path("sweep.csv"), rows)
        summary = {
            "format": SWEEP_FORMAT,
            "description": dict(description),
            "statistics": {
                "primary_test": stats.PRIMARY_TEST,
                "correction": "holm",
                "also_given": "benjamini_hochberg",
                "family_size": len(rows),
                **dataclasses.asdict(config),
            },
            "rows": [_jsonable(row) for row in rows],
            "decisions": {d: sum(row["decision"] == d for row in rows) for d in DECISIONS},
            "figures": figures,
            "figure_notes": notes,
        }
        storage.write_json(staging.path("summary.json"), summary)
        markdown = render_markdown(
            rows,
            alpha=alpha,
            n_seeds=n_seeds,
            epochs=epochs,
            description=description,
            figures=figures,
            code_text=code_text,
            figure_notes=notes,
            stats_seed=stats_seed,
            n_resamples=n_resamples,
        )
        storage.write_text(staging.path("report.md"), markdown)
    return summary
