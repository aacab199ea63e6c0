"""The comparison of two models: :func:`compare` and its result, :class:`Comparison`.

:func:`compare` runs every statistic of the package on the two models' per-seed MSEs, and
:func:`decide` turns the primary test's p-value and the median log10 ratio into a
:data:`Decision`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from fibjax.stats.config import StatsConfig
from fibjax.stats.effects import effect_sizes
from fibjax.stats.power import power_analysis
from fibjax.stats.samples import describe_sample, prepare, validate_pair
from fibjax.stats.significance import PRIMARY_TEST, paired_tests, unpaired_tests

Decision = Literal["a_better", "b_better", "undecided"]


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare`; treat the nested dicts as read-only.

    Attributes:
        names: Display names of ``a`` (candidate) and ``b`` (baseline).
        primary_test: Always :data:`PRIMARY_TEST`.
        decision: ``"a_better"`` / ``"b_better"`` when the primary test rejects at
            ``config.alpha`` (direction from the median log10 ratio), else ``"undecided"``.
        n_seeds: Length of the inputs.
        n_pairs: Seeds where both MSEs are valid (used by paired statistics).
        n_dropped_a: Invalid (diverged) seeds of ``a``.
        n_dropped_b: Invalid (diverged) seeds of ``b``.
        summary_a: :func:`describe_sample` of ``a`` (without ``notes``).
        summary_b: :func:`describe_sample` of ``b`` (without ``notes``).
        paired: :func:`paired_tests` (without ``notes``).
        unpaired: :func:`unpaired_tests` (without ``notes``).
        effects: :func:`effect_sizes` (without ``notes``).
        power: :func:`power_analysis` at the observed d_z (without ``notes``).
        notes: Why statistics are NaN / methods changed, prefixed by the section.
        config: The settings used.
    """

    names: tuple[str, str]
    primary_test: str
    decision: Decision
    n_seeds: int
    n_pairs: int
    n_dropped_a: int
    n_dropped_b: int
    summary_a: dict[str, Any]
    summary_b: dict[str, Any]
    paired: dict[str, Any]
    unpaired: dict[str, Any]
    effects: dict[str, Any]
    power: dict[str, Any]
    notes: tuple[str, ...]
    config: StatsConfig
    adjustment: dict[str, Any] | None = None

    def __repr__(self) -> str:
        """A few lines: the decision, the medians, the paired ratio and the notes."""
        a, b = self.names
        decision = {"a_better": f"{a} better", "b_better": f"{b} better"}.get(
            self.decision, "undecided"
        )
        p = self.paired["wilcoxon"]["pvalue"]
        ratio = self.paired["median_log10_ratio"]
        wins = self.paired["prob_a_wins"]
        lines = [
            f"Comparison({a} vs {b}: {decision}; Wilcoxon signed-rank on log10 MSE p={p:.3g},"
            f" {self.n_pairs} pairs of {self.n_seeds} seeds)",
            f"  median test MSE: {a} {_ci_text(self.summary_a, 'median', 10.0)},"
            f" {b} {_ci_text(self.summary_b, 'median', 10.0)}",
            f"  {a}/{b} MSE, median of pairs: {10.0 ** ratio['estimate']:.3g}"
            f" [{10.0 ** ratio['ci']['low']:.3g}, {10.0 ** ratio['ci']['high']:.3g}]",
            f"  P({a} wins a pair): {wins['estimate']:.3g}"
            f" [{wins['ci']['low']:.3g}, {wins['ci']['high']:.3g}]",
        ]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def rows(self) -> list[dict[str, Any]]:
        """The comparison as a table: one row per statistic, with its estimate, interval and p.

        Returns:
            Dicts with ``statistic``, ``estimate``, ``ci_low``, ``ci_high`` and ``pvalue``
            (``nan`` where a statistic has none); MSEs are in MSE units, not logs.
        """
        a, b = self.names
        nan = float("nan")

        def row(name, estimate=nan, ci=None, pvalue=nan, scale=None):
            low, high = (nan, nan) if ci is None else (ci["low"], ci["high"])
            if scale is not None:
                estimate, low, high = (scale**v for v in (estimate, low, high))
            values = (estimate, low, high, pvalue)
            names = ("statistic", "estimate", "ci_low", "ci_high", "pvalue")
            return dict(zip(names, (name, *map(float, values)), strict=True))

        effects, paired, unpaired = self.effects, self.paired, self.unpaired
        return [
            row(
                f"median test MSE, {a}",
                self.summary_a["median"],
                self.summary_a["median_ci"],
                scale=10.0,
            ),
            row(
                f"median test MSE, {b}",
                self.summary_b["median"],
                self.summary_b["median_ci"],
                scale=10.0,
            ),
            row(
                f"{a}/{b} MSE ratio (median of pairs)",
                paired["median_log10_ratio"]["estimate"],
                paired["median_log10_ratio"]["ci"],
                paired["wilcoxon"]["pvalue"],
                scale=10.0,
            ),
            row(
                f"P({a} wins a pair)",
                paired["prob_a_wins"]["estimate"],
                paired["prob_a_wins"]["ci"],
            ),
            row(
                "Cliff's delta", effects["cliffs_delta"]["estimate"], effects["cliffs_delta"]["ci"]
            ),
            row(
                "Hedges' g (log10 MSE)", effects["hedges_g"]["estimate"], effects["hedges_g"]["ci"]
            ),
            row(
                "Cohen's d_z (log10 MSE)",
                effects["cohens_dz"]["estimate"],
                effects["cohens_dz"]["ci"],
            ),
            row(
                "paired permutation, mean log10 ratio",
                pvalue=paired["permutation_mean_diff"]["pvalue"],
            ),
            row("Welch t (log10 MSE, unpaired)", pvalue=unpaired["welch"]["pvalue"]),
            row("Mann-Whitney U (unpaired)", pvalue=unpaired["mann_whitney"]["pvalue"]),
            row("power of a paired t at this d_z", self.power["achieved_power_paired_t"]),
        ]

    def to_dataframe(self) -> Any:
        """:meth:`rows` as a pandas DataFrame indexed by statistic (pandas is not required).

        Raises:
            ImportError: pandas is not installed (one line saying so).
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "Comparison.to_dataframe() needs pandas: pip install pandas (or use .rows())"
            ) from None
        return pd.DataFrame(self.rows()).set_index("statistic")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (plain Python types; NaN and inf become None).

        Returns:
            ``{"names": {"a", "b"}, "primary_test", "decision", "n_seeds", "n_pairs",
            "n_dropped": {"a", "b"}, "summary": {"a", "b"}, "paired", "unpaired",
            "effects", "power", "notes", "config", "adjustment"}``; ``adjustment`` is
            ``None`` unless the comparison is one of a family (:func:`compare_family`).
        """
        return _jsonable(
            {
                "names": {"a": self.names[0], "b": self.names[1]},
                "primary_test": self.primary_test,
                "decision": self.decision,
                "n_seeds": self.n_seeds,
                "n_pairs": self.n_pairs,
                "n_dropped": {"a": self.n_dropped_a, "b": self.n_dropped_b},
                "summary": {"a": self.summary_a, "b": self.summary_b},
                "paired": self.paired,
                "unpaired": self.unpaired,
                "effects": self.effects,
                "power": self.power,
                "notes": list(self.notes),
                "config": dataclasses.asdict(self.config),
                "adjustment": self.adjustment,
            }
        )


def _ci_text(summary: dict[str, Any], name: str, scale: float) -> str:
    """``estimate [low, high]`` of a log10 statistic, back in MSE units."""
    ci = summary[f"{name}_ci"]
    values = (scale ** summary[name], scale ** ci["low"], scale ** ci["high"])
    return "{:.2e} [{:.2e}, {:.2e}]".format(*values)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def decide(pvalue: float, median_log_ratio: float, alpha: float) -> Decision:
    """The :data:`Decision` of a primary p-value at ``alpha``, its direction from the ratio."""
    if not (np.isfinite(pvalue) and pvalue < alpha) or not np.isfinite(median_log_ratio):
        return "undecided"
    if median_log_ratio < 0:
        return "a_better"
    return "b_better" if median_log_ratio > 0 else "undecided"


def _take_notes(section: dict[str, Any], prefix: str, notes: list[str]) -> dict[str, Any]:
    notes.extend(f"{prefix}: {note}" for note in section.pop("notes"))
    return section


def compare(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    config: StatsConfig = StatsConfig(),  # noqa: B008 (frozen, hence immutable)
    *,
    names: Sequence[str] = ("attention", "vanilla"),
) -> Comparison:
    """Compare candidate ``a`` with baseline ``b`` over seeds (lower MSE is better).

    Bit-identical results for identical inputs and config (seeded resampling).

    Args:
        a: ``<float64>[n_seeds]`` candidate test MSEs (NaN/inf = diverged seed).
        b: ``<float64>[n_seeds]`` baseline test MSEs, paired with ``a`` by seed index.
        config: Levels, resample count and seed.
        names: Display names of ``a`` and ``b``, used in notes and ``to_dict``.

    Returns:
        A :class:`Comparison` whose ``decision`` comes from the primary test
        (:data:`PRIMARY_TEST`) at ``config.alpha``.

    Raises:
        ValueError: If ``a`` and ``b`` are not 1-D arrays of equal length.

    Example:
        >>> attention = [1e-4, 2e-4, 5e-5, 1e-4, 3e-4, 8e-5, 1e-4, 2e-4]
        >>> vanilla = [1e-3, 4e-3, 2e-3, 1e-3, 5e-3, 9e-4, 2e-3, float("nan")]
        >>> result = compare(attention, vanilla, StatsConfig(n_resamples=1000))
        >>> result.decision, result.n_pairs, result.n_dropped_b
        ('a_better', 7, 1)
        >>> result.paired["wilcoxon"]["pvalue"]  # exact: all 7 pairs favour a, 2 / 2**7
        0.015625
    """
    a_arr, b_arr = validate_pair(a, b)
    prep = prepare(a_arr, b_arr)
    name_a, name_b = (str(n) for n in names)
    notes: list[str] = []
    for name, dropped in ((name_a, prep.n_dropped_a), (name_b, prep.n_dropped_b)):
        if dropped:
            notes.append(f"{name}: {dropped} of {prep.n_seeds} seeds invalid (diverged), dropped")
    summary_a = _take_notes(describe_sample(a_arr, config), name_a, notes)
    summary_b = _take_notes(describe_sample(b_arr, config), name_b, notes)
    paired = _take_notes(paired_tests(a_arr, b_arr, config), "paired", notes)
    unpaired = _take_notes(unpaired_tests(a_arr, b_arr), "unpaired", notes)
    effects = _take_notes(effect_sizes(a_arr, b_arr, config), "effects", notes)
    d_z = effects["cohens_dz"]["estimate"]
    power = _take_notes(power_analysis(d_z, paired["n_pairs"], config), "power", notes)
    decision = decide(
        paired["wilcoxon"]["pvalue"], paired["median_log10_ratio"]["estimate"], config.alpha
    )
    return Comparison(
        names=(name_a, name_b),
        primary_test=PRIMARY_TEST,
        decision=decision,
        n_seeds=prep.n_seeds,
        n_pairs=paired["n_pairs"],
        n_dropped_a=prep.n_dropped_a,
        n_dropped_b=prep.n_dropped_b,
        summary_a=summary_a,
        summary_b=summary_b,
        paired=paired,
        unpaired=unpaired,
        effects=effects,
        power=power,
        notes=tuple(notes),
        config=config,
    )
