"""The sweep's table: each grid point's statistics, decided over the grid, and ``sweep.csv``.

A *grid point* is one attention form against the vanilla model of the same cell, hidden size,
window, scaling and learning rate, trained under the same seeds (:class:`PointResult`). Each
point gets the paired statistics of :func:`fibjax.stats.paired_tests` (:func:`point_row`); the
primary Wilcoxon p-values are corrected over the whole grid by Holm's method, which decides,
with Benjamini–Hochberg q-values beside them (:func:`sweep_rows`). :func:`write_sweep_csv` and
:func:`read_sweep_csv` write the rows to ``sweep.csv`` and read them back, typed and checked.

Nothing here trains: the caller hands in the MSEs (diverged seeds as NaN, as
:func:`fibjax.reports.compare_tables.stats_input` gives them).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fibjax import stats
from fibjax.reports.sweep_axes import AXES, AXIS_TYPES
from fibjax.results import storage
from fibjax.stats.samples import from_log10

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
    """``10 ** median(log10 MSE)`` over the valid seeds, on stats' log scale (0 stays 0)."""
    valid = values[np.isfinite(values)]
    if valid.size == 0:
        return math.nan
    return from_log10(float(np.median(np.log10(np.maximum(valid, _TINY)))))


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
      fibjax.results.storage.ResultFileError: the file is missing, has other columns, a value
        that is not of its column's type or range, or two rows with the same settings.
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
