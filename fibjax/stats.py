"""Multi-seed statistical comparison of two models' test MSEs, built on ``scipy.stats``.

Conventions used throughout the module:

* ``a`` is the candidate (attention RNN) and ``b`` the baseline (vanilla RNN). Both are
  ``<float64>[n_seeds]`` test MSEs, paired by index (seed ``i`` trained both models).
  Lower MSE is better.
* Invalid entries are dropped: non-finite values (NaN/inf, i.e. the seed diverged) and
  negative values (impossible for an MSE). Per-model statistics use that model's valid
  values, paired statistics the seeds where both are valid, unpaired statistics each
  model's valid values. The dropped counts and the number of pairs are reported.
* Everything where scale matters is computed on ``log10(MSE)``, because MSE spans orders
  of magnitude across seeds. An MSE of exactly 0 is mapped to
  ``log10(np.finfo(np.float64).tiny)`` (about -307.65) instead of ``-inf``; a note says so.
* Sign convention: every difference is ``a - b``. A negative log10 ratio, Cliff's delta
  (``P(a > b) - P(a < b)``), Hedges' g or d_z means ``a`` is lower, i.e. better.
  Probabilities are of ``a < b``, so values above 0.5 favour ``a``.
* The primary test, fixed in advance, is the two-sided Wilcoxon signed-rank test on the
  paired ``log10(a) - log10(b)`` (:data:`PRIMARY_TEST`); every other p-value is secondary.
* Determinism: each resampling call draws from its own generator seeded by
  ``(config.seed, name of the statistic)``, so the same inputs and config give
  bit-identical outputs, independent of the order in which statistics are computed.
* Degenerate inputs (fewer than 2 pairs, identical values, all seeds diverged) never
  raise: undefined statistics are NaN and a short note explains why. Only a bad
  :class:`StatsConfig` or badly shaped inputs raise ``ValueError``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import special, stats

__all__ = [
    "PRIMARY_TEST",
    "WILCOXON_ARE",
    "Comparison",
    "Decision",
    "StatsConfig",
    "cliffs_delta",
    "cohens_dz",
    "compare",
    "describe_sample",
    "effect_sizes",
    "hedges_g",
    "paired_t_power",
    "paired_tests",
    "power_analysis",
    "primary_test",
    "probability_of_improvement",
    "unpaired_tests",
]

PRIMARY_TEST = "wilcoxon_signed_rank_log10_mse"
# Asymptotic relative efficiency of the Wilcoxon signed-rank test vs the t-test under
# normality (log MSE is roughly normal when MSE is log-normal).
WILCOXON_ARE = 3.0 / math.pi
Decision = Literal["a_better", "b_better", "undecided"]

_TINY = np.finfo(np.float64).tiny
_NAN = float("nan")
# Beyond this many seeds the noncentral-t search is pointless; the normal answer is used.
_MAX_SEARCH_N = 1_000_000


@dataclasses.dataclass(frozen=True)
class StatsConfig:
    """Settings of the comparison; validated on construction.

    Attributes:
        alpha: Significance level of the tests and of the power analysis, in (0, 1).
        confidence: Confidence level of every interval, in (0, 1).
        power: Target power when computing the number of seeds needed, in (0, 1).
        n_resamples: Bootstrap / permutation resamples, an integer >= 100.
        seed: Base seed of every resampling generator, an integer >= 0.
    """

    alpha: float = 0.05
    confidence: float = 0.95
    power: float = 0.8
    n_resamples: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("alpha", "confidence", "power"):
            _check_open_unit(name, getattr(self, name))
        _check_min_int("n_resamples", self.n_resamples, 100)
        _check_min_int("seed", self.seed, 0)


def _check_open_unit(name: str, value: Any) -> None:
    is_real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    if not (is_real and 0.0 < value < 1.0):
        raise ValueError(
            f"StatsConfig.{name}={value!r} is invalid: must be a number strictly between 0 and 1"
        )


def _check_min_int(name: str, value: Any, minimum: int) -> None:
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not (is_int and value >= minimum):
        raise ValueError(
            f"StatsConfig.{name}={value!r} is invalid: must be an integer >= {minimum}"
        )


@dataclasses.dataclass(frozen=True)
class _Prepared:
    """Validated inputs: log10 MSE of each model's valid seeds and of the valid pairs."""

    log_a: np.ndarray
    log_b: np.ndarray
    pair_a: np.ndarray
    pair_b: np.ndarray
    n_seeds: int
    n_dropped_a: int
    n_dropped_b: int


def _as_vector(values: npt.ArrayLike, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of per-seed MSEs, got shape {x.shape}")
    return x


def _validate_pair(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a_arr = np.asarray(a, dtype=np.float64)
    b_arr = np.asarray(b, dtype=np.float64)
    if a_arr.ndim != 1 or b_arr.ndim != 1 or a_arr.shape != b_arr.shape:
        raise ValueError(
            "a and b must be 1-D arrays of equal length (paired by seed), "
            f"got shapes {a_arr.shape} and {b_arr.shape}"
        )
    return a_arr, b_arr


def _valid(x: np.ndarray) -> np.ndarray:
    return np.isfinite(x) & (x >= 0.0)


def _log10(x: np.ndarray) -> np.ndarray:
    # A perfect fit (MSE == 0) would give -inf and poison every mean; tiny keeps it finite.
    return np.log10(np.maximum(x, _TINY))


def _prepare(a: npt.ArrayLike, b: npt.ArrayLike) -> _Prepared:
    a_arr, b_arr = _validate_pair(a, b)
    ok_a, ok_b = _valid(a_arr), _valid(b_arr)
    both = ok_a & ok_b
    return _Prepared(
        log_a=_log10(a_arr[ok_a]),
        log_b=_log10(b_arr[ok_b]),
        pair_a=_log10(a_arr[both]),
        pair_b=_log10(b_arr[both]),
        n_seeds=int(a_arr.size),
        n_dropped_a=int(a_arr.size - ok_a.sum()),
        n_dropped_b=int(b_arr.size - ok_b.sum()),
    )


# --------------------------------------------------------------------------- bootstrap


def _rng(config: StatsConfig, stream: str) -> np.random.Generator:
    # One generator per statistic, keyed by its name: results do not depend on call order.
    return np.random.default_rng([config.seed, zlib.crc32(stream.encode())])


def _nan_interval() -> dict[str, Any]:
    return {"low": _NAN, "high": _NAN, "method": None}


def _bootstrap_interval(
    samples: tuple[np.ndarray, ...],
    statistic: Callable[..., Any],
    config: StatsConfig,
    stream: str,
    notes: list[str],
) -> dict[str, Any]:
    """BCa bootstrap interval, falling back to percentile when BCa is undefined."""
    if min(s.size for s in samples) < 2:
        notes.append(f"{stream}: interval needs >= 2 values per sample")
        return _nan_interval()
    kwargs = dict(confidence_level=config.confidence, vectorized=True)
    with warnings.catch_warnings():
        # BCa warns (and returns NaN) on degenerate data; the fallback below handles it.
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            samples,
            statistic,
            n_resamples=config.n_resamples,
            method="BCa",
            rng=_rng(config, stream),
            **kwargs,
        )
        if _finite_interval(res):
            return _interval(res, "BCa")
        # Reuses the same bootstrap distribution, only the quantile rule changes.
        res = stats.bootstrap(
            samples, statistic, n_resamples=0, bootstrap_result=res, method="percentile", **kwargs
        )
    if _finite_interval(res):
        return _interval(res, "percentile")
    notes.append(f"{stream}: bootstrap interval undefined (degenerate resamples)")
    return _nan_interval()


def _finite_interval(res: Any) -> bool:
    return bool(
        np.isfinite(res.confidence_interval.low) and np.isfinite(res.confidence_interval.high)
    )


def _interval(res: Any, method: str) -> dict[str, Any]:
    ci = res.confidence_interval
    return {"low": float(ci.low), "high": float(ci.high), "method": method}


# ------------------------------------------------------------------ per-model summary


def describe_sample(values: npt.ArrayLike, config: StatsConfig = StatsConfig()) -> dict[str, Any]:
    """Summarise one model's test MSEs across seeds, on the log10 scale.

    Args:
        values: ``<float64>[n_seeds]`` test MSEs; non-finite or negative entries are dropped.
        config: Confidence level, resample count and seed of the bootstrap intervals.

    Returns:
        Dict with ``n`` (valid seeds), ``n_dropped``, and on log10 MSE: ``mean``, ``std``
        (ddof=1), ``median``, ``q25``, ``q75``, ``iqr``, ``iqm`` (interquartile mean,
        ``trim_mean(x, 0.25)``), ``mean_ci`` and ``median_ci`` (each
        ``{"low", "high", "method"}``, BCa bootstrap with percentile fallback);
        ``geometric_mean_mse`` (``10 ** mean``, in MSE units); ``notes`` (list of str).

    Raises:
        ValueError: If ``values`` is not 1-D.

    Example:
        >>> s = describe_sample([1e-3, 1e-2, 1e-1, float("nan")], StatsConfig(n_resamples=200))
        >>> s["n"], s["n_dropped"], s["mean"], s["median"]
        (3, 1, -2.0, -2.0)
        >>> round(s["geometric_mean_mse"], 12)
        0.01
    """
    x = _as_vector(values, "values")
    notes: list[str] = []
    logs = _log10(x[_valid(x)])
    if np.any(x == 0.0):
        notes.append("MSE of exactly 0 mapped to log10(float64 tiny) = -307.65")
    out: dict[str, Any] = {"n": int(logs.size), "n_dropped": int(x.size - logs.size)}
    out.update(_location_scale(logs, notes))
    out["mean_ci"] = _bootstrap_interval((logs,), np.mean, config, "mean", notes)
    out["median_ci"] = _bootstrap_interval((logs,), np.median, config, "median", notes)
    with np.errstate(over="ignore"):
        out["geometric_mean_mse"] = float(np.power(10.0, out["mean"]))
    out["notes"] = notes
    return out


def _location_scale(logs: np.ndarray, notes: list[str]) -> dict[str, float]:
    keys = ("mean", "std", "median", "q25", "q75", "iqr", "iqm")
    if logs.size == 0:
        notes.append("no valid seeds: every statistic is undefined")
        return dict.fromkeys(keys, _NAN)
    q25, median, q75 = np.quantile(logs, [0.25, 0.5, 0.75])
    if logs.size < 2:
        notes.append("std needs >= 2 valid seeds")
    return {
        "mean": float(np.mean(logs)),
        "std": float(np.std(logs, ddof=1)) if logs.size >= 2 else _NAN,
        "median": float(median),
        "q25": float(q25),
        "q75": float(q75),
        "iqr": float(q75 - q25),
        "iqm": float(stats.trim_mean(logs, 0.25)),
    }


# ------------------------------------------------------------------------ paired tests


def primary_test(a: npt.ArrayLike, b: npt.ArrayLike) -> dict[str, Any]:
    """Run the primary test: two-sided Wilcoxon signed-rank on ``log10(a) - log10(b)``.

    Uses :func:`scipy.stats.wilcoxon` with its defaults (zero differences dropped,
    exact p-value for small samples without ties). Only seeds where both MSEs are valid
    are used.

    Args:
        a: ``<float64>[n_seeds]`` candidate MSEs.
        b: ``<float64>[n_seeds]`` baseline MSEs, paired with ``a`` by index.

    Returns:
        Dict with ``test`` (:data:`PRIMARY_TEST`), ``statistic``, ``pvalue`` (NaN when
        undefined), ``n_pairs``, ``n_nonzero`` (pairs with a nonzero difference), ``notes``.

    Raises:
        ValueError: If ``a`` and ``b`` are not 1-D arrays of equal length.

    Example:
        >>> r = primary_test([1e-4, 2e-4, 3e-4, 4e-4, 5e-4], [1e-3, 2e-3, 3e-3, 4e-3, 5e-3])
        >>> r["pvalue"], r["n_pairs"]  # exact: 2 of the 2**5 sign patterns are as extreme
        (0.0625, 5)
    """
    prep = _prepare(a, b)
    notes: list[str] = []
    out = _wilcoxon(prep.pair_a - prep.pair_b, notes)
    out["notes"] = notes
    return out


def _wilcoxon(diff: np.ndarray, notes: list[str]) -> dict[str, Any]:
    n_nonzero = int(np.count_nonzero(diff))
    out = {
        "test": PRIMARY_TEST,
        "statistic": _NAN,
        "pvalue": _NAN,
        "n_pairs": int(diff.size),
        "n_nonzero": n_nonzero,
    }
    if diff.size < 2 or n_nonzero == 0:
        notes.append("wilcoxon: needs >= 2 pairs and a nonzero paired difference")
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.wilcoxon(diff, alternative="two-sided")
    out.update(statistic=float(res.statistic), pvalue=float(res.pvalue))
    return out


def paired_tests(
    a: npt.ArrayLike, b: npt.ArrayLike, config: StatsConfig = StatsConfig()
) -> dict[str, Any]:
    """Compute the paired (same-seed) statistics on ``log10(a) - log10(b)``.

    Args:
        a: ``<float64>[n_seeds]`` candidate MSEs.
        b: ``<float64>[n_seeds]`` baseline MSEs, paired with ``a`` by index.
        config: Resampling and interval settings.

    Returns:
        Dict with ``n_pairs``; ``wilcoxon`` (see :func:`primary_test`);
        ``permutation_mean_diff`` (``statistic`` = mean log10 ratio, sign-flip
        permutation ``pvalue``); ``median_log10_ratio`` (``estimate``, paired bootstrap
        ``ci``); ``correlation`` (Pearson and Spearman between the paired log values, with
        p-values: pairing only gains power when these are high); ``prob_a_wins`` (fraction
        of pairs with ``a < b``, ``wins``, ``ties``, ``n``, Wilson ``ci``); ``notes``.

    Raises:
        ValueError: If ``a`` and ``b`` are not 1-D arrays of equal length.
    """
    prep = _prepare(a, b)
    notes: list[str] = []
    diff = prep.pair_a - prep.pair_b
    return {
        "n_pairs": int(diff.size),
        "wilcoxon": _wilcoxon(diff, notes),
        "permutation_mean_diff": _permutation_mean_diff(prep.pair_a, prep.pair_b, config, notes),
        "median_log10_ratio": _median_log_ratio(diff, config, notes),
        "correlation": _pair_correlation(prep.pair_a, prep.pair_b, notes),
        "prob_a_wins": _prob_a_wins(prep.pair_a, prep.pair_b, config, notes),
        "notes": notes,
    }


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def _permutation_mean_diff(
    pa: np.ndarray, pb: np.ndarray, config: StatsConfig, notes: list[str]
) -> dict[str, float]:
    if pa.size < 2:
        notes.append("permutation test: needs >= 2 pairs")
        return {"statistic": _NAN, "pvalue": _NAN}
    # "samples" permutes within each pair, i.e. random sign flips of the differences;
    # SciPy enumerates all 2**n flips exactly when that is fewer than n_resamples.
    res = stats.permutation_test(
        (pa, pb),
        _mean_difference,
        permutation_type="samples",
        vectorized=True,
        n_resamples=config.n_resamples,
        alternative="two-sided",
        rng=_rng(config, "permutation_mean_diff"),
    )
    return {"statistic": float(res.statistic), "pvalue": float(min(res.pvalue, 1.0))}


def _median_log_ratio(diff: np.ndarray, config: StatsConfig, notes: list[str]) -> dict[str, Any]:
    estimate = float(np.median(diff)) if diff.size else _NAN
    # Resampling the differences is resampling whole pairs (a paired bootstrap).
    ci = _bootstrap_interval((diff,), np.median, config, "median_log10_ratio", notes)
    return {"estimate": estimate, "ci": ci}


def _pair_correlation(pa: np.ndarray, pb: np.ndarray, notes: list[str]) -> dict[str, float]:
    out = dict.fromkeys(("pearson_r", "pearson_pvalue", "spearman_rho", "spearman_pvalue"), _NAN)
    if pa.size < 3:
        notes.append("correlation: needs >= 3 pairs")
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pearson = stats.pearsonr(pa, pb)
        spearman = stats.spearmanr(pa, pb)
    out.update(
        pearson_r=float(pearson.statistic),
        pearson_pvalue=float(pearson.pvalue),
        spearman_rho=float(spearman.statistic),
        spearman_pvalue=float(spearman.pvalue),
    )
    if not np.isfinite(out["pearson_r"]):
        notes.append("correlation: undefined for a model with constant values")
    return out


def _prob_a_wins(
    pa: np.ndarray, pb: np.ndarray, config: StatsConfig, notes: list[str]
) -> dict[str, Any]:
    n, wins, ties = int(pa.size), int(np.sum(pa < pb)), int(np.sum(pa == pb))
    if n == 0:
        notes.append("prob_a_wins: no valid pairs")
        return {"estimate": _NAN, "wins": 0, "ties": 0, "n": 0, "ci": _nan_interval()}
    # A win is a strict a < b; exact ties count as non-wins (reported separately).
    ci = stats.binomtest(wins, n).proportion_ci(config.confidence, method="wilson")
    return {
        "estimate": wins / n,
        "wins": wins,
        "ties": ties,
        "n": n,
        "ci": {"low": float(ci.low), "high": float(ci.high), "method": "wilson"},
    }


# ---------------------------------------------------------------------- unpaired tests


def unpaired_tests(a: npt.ArrayLike, b: npt.ArrayLike) -> dict[str, Any]:
    """Compare the two models' log10 MSEs as independent samples (ignoring the pairing).

    Args:
        a: ``<float64>[n_seeds]`` candidate MSEs.
        b: ``<float64>[n_seeds]`` baseline MSEs.

    Returns:
        Dict with ``n_a``, ``n_b``; ``welch`` (``statistic``, ``pvalue``, ``df`` of
        ``ttest_ind(equal_var=False)``); ``mann_whitney`` (``statistic`` = U of ``a``,
        ``pvalue``; two-sided); ``notes``.

    Raises:
        ValueError: If ``a`` and ``b`` are not 1-D arrays of equal length.
    """
    prep = _prepare(a, b)
    notes: list[str] = []
    return {
        "n_a": int(prep.log_a.size),
        "n_b": int(prep.log_b.size),
        "welch": _welch(prep.log_a, prep.log_b, notes),
        "mann_whitney": _mann_whitney(prep.log_a, prep.log_b, notes),
        "notes": notes,
    }


def _welch(x: np.ndarray, y: np.ndarray, notes: list[str]) -> dict[str, float]:
    out = {"statistic": _NAN, "pvalue": _NAN, "df": _NAN}
    if x.size < 2 or y.size < 2:
        notes.append("welch: needs >= 2 valid seeds per model")
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.ttest_ind(x, y, equal_var=False)
    out.update(statistic=float(res.statistic), pvalue=float(res.pvalue), df=float(res.df))
    if not np.isfinite(out["pvalue"]):
        notes.append("welch: undefined when both models have zero variance")
    return out


def _mann_whitney(x: np.ndarray, y: np.ndarray, notes: list[str]) -> dict[str, float]:
    if x.size < 1 or y.size < 1:
        notes.append("mann_whitney: needs >= 1 valid seed per model")
        return {"statistic": _NAN, "pvalue": _NAN}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.mannwhitneyu(x, y, alternative="two-sided")
    return {"statistic": float(res.statistic), "pvalue": float(res.pvalue)}


# ------------------------------------------------------------------------ effect sizes


def probability_of_improvement(x: npt.ArrayLike, y: npt.ArrayLike) -> dict[str, float]:
    """Compare every ``x`` value with every ``y`` value (unpaired).

    Args:
        x: ``<float64>[n]`` candidate values (any monotone scale: MSE or log MSE).
        y: ``<float64>[m]`` baseline values.

    Returns:
        Dict with ``p_less`` = P(x < y), ``p_greater`` = P(x > y), ``p_tie`` = P(x == y)
        over all ``n * m`` pairs (they sum to 1) and ``estimate`` = ``p_less + p_tie / 2``,
        the probability of improvement with ties counted half (= U_y / (n m)). All NaN if
        either input is empty.

    Example:
        >>> p = probability_of_improvement([1.0, 2.0, 3.0], [2.0, 4.0])
        >>> p["p_less"], p["p_greater"], p["p_tie"], p["estimate"]  # 4, 1, 1 of 6 pairs
        (0.6666666666666666, 0.16666666666666666, 0.16666666666666666, 0.75)
    """
    less, greater, tie = _pair_counts(x, y)
    total = less + greater + tie
    if total == 0:
        return dict.fromkeys(("p_less", "p_greater", "p_tie", "estimate"), _NAN)
    return {
        "p_less": less / total,
        "p_greater": greater / total,
        "p_tie": tie / total,
        "estimate": (less + 0.5 * tie) / total,
    }


def cliffs_delta(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Cliff's delta ``P(x > y) - P(x < y)`` over all pairs; negative means ``x`` lower.

    Args:
        x: ``<float64>[n]`` candidate values.
        y: ``<float64>[m]`` baseline values.

    Returns:
        Delta in [-1, 1]; NaN if either input is empty.

    Example:
        >>> cliffs_delta([1.0, 2.0, 3.0], [2.0, 4.0])  # (1 greater - 4 less) / 6 pairs
        -0.5
    """
    less, greater, tie = _pair_counts(x, y)
    total = less + greater + tie
    return (greater - less) / total if total else _NAN


def _pair_counts(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[int, int, int]:
    # Integer counts make swapping x and y flip the results exactly.
    x_col = np.asarray(x, dtype=np.float64)[:, None]
    y_row = np.asarray(y, dtype=np.float64)[None, :]
    return int(np.sum(x_col < y_row)), int(np.sum(x_col > y_row)), int(np.sum(x_col == y_row))


def _prob_less_ranked(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Vectorised ``P(x < y) + P(x == y) / 2`` via midranks, for the bootstrap."""
    x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
    n_x, n_y = x.shape[-1], y.shape[-1]
    # BCa's jackknife passes samples with different leading shapes; align them first.
    lead = np.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    both = np.concatenate(
        [np.broadcast_to(x, lead + (n_x,)), np.broadcast_to(y, lead + (n_y,))], axis=-1
    )
    ranks = stats.rankdata(both, axis=-1)
    u_x = ranks[..., :n_x].sum(axis=-1) - n_x * (n_x + 1) / 2  # #(x > y) + ties / 2
    return 1.0 - u_x / (n_x * n_y)


def hedges_g(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Hedges' g: bias-corrected standardized mean difference ``(mean x - mean y) / s_pooled``.

    The correction is the exact ``J(df) = Γ(df/2) / (sqrt(df/2) Γ((df-1)/2))`` with
    ``df = n + m - 2`` (``1 - 3 / (4 df - 1)`` is its usual approximation).

    Args:
        x: ``<float64>[n]`` candidate values (``compare`` passes log10 MSE).
        y: ``<float64>[m]`` baseline values.

    Returns:
        g (negative when ``x`` is lower); NaN if a sample has fewer than 2 values or the
        pooled standard deviation is 0.

    Example:
        >>> round(hedges_g([1.0, 2.0, 3.0], [3.0, 4.0, 5.0]), 4)  # d = -2, J(4) = 0.7979
        -1.5958
    """
    x_arr, y_arr = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x_arr.size < 2 or y_arr.size < 2:
        return _NAN
    g = float(_hedges_g(x_arr, y_arr))
    return g if np.isfinite(g) else _NAN


def _hedges_g(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    n_x, n_y = x.shape[axis], y.shape[axis]
    df = n_x + n_y - 2
    pooled_var = (
        (n_x - 1) * np.var(x, axis=axis, ddof=1) + (n_y - 1) * np.var(y, axis=axis, ddof=1)
    ) / df
    diff = np.mean(x, axis=axis) - np.mean(y, axis=axis)
    return _hedges_correction(df) * _standardize(diff, np.sqrt(pooled_var), _noise(x, y))


def _noise(*arrays: np.ndarray) -> float:
    # Rounding noise of values of this magnitude: e.g. log10(2) - log10(1) and
    # log10(4) - log10(2) differ by ~1e-16, which must not count as a real spread.
    return 1e-12 * max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)


def _standardize(num: np.ndarray, sd: np.ndarray, noise: float) -> np.ndarray:
    num = np.where(np.abs(num) <= noise, 0.0, num)
    sd = np.where(sd <= noise, 0.0, sd)
    with np.errstate(divide="ignore", invalid="ignore"):
        return num / sd


def _hedges_correction(df: int) -> float:
    return float(np.exp(special.gammaln(df / 2) - special.gammaln((df - 1) / 2)) / np.sqrt(df / 2))


def _hedges_g_resampled(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    # A resample may repeat one value per model; equal constants mean "no difference" (0)
    # rather than 0/0, so such rare resamples do not turn the whole interval into NaN.
    return np.nan_to_num(_hedges_g(x, y, axis), nan=0.0, posinf=np.inf, neginf=-np.inf)


def cohens_dz(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Paired standardized mean difference ``d_z = mean(x - y) / sd(x - y)`` (ddof=1).

    Args:
        x: ``<float64>[n]`` candidate values.
        y: ``<float64>[n]`` baseline values, paired with ``x``.

    Returns:
        d_z (negative when ``x`` is lower); NaN with fewer than 2 pairs or constant
        differences.

    Example:
        >>> cohens_dz([1.0, 2.0, 3.0], [2.0, 2.0, 5.0])  # diffs -1, 0, -2: mean -1, sd 1
        -1.0
    """
    diff = np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    if diff.size < 2:
        return _NAN
    dz = float(_standardized_mean(diff))
    return dz if np.isfinite(dz) else _NAN


def _standardized_mean(diff: np.ndarray, axis: int = -1) -> np.ndarray:
    return _standardize(np.mean(diff, axis=axis), np.std(diff, axis=axis, ddof=1), _noise(diff))


def _standardized_mean_resampled(diff: np.ndarray, axis: int = -1) -> np.ndarray:
    # Same rationale as _hedges_g_resampled: an all-equal resample of zeros counts as 0.
    return np.nan_to_num(_standardized_mean(diff, axis), nan=0.0, posinf=np.inf, neginf=-np.inf)


def effect_sizes(
    a: npt.ArrayLike, b: npt.ArrayLike, config: StatsConfig = StatsConfig()
) -> dict[str, Any]:
    """Effect sizes of ``a`` vs ``b`` on log10 MSE, each with a bootstrap interval.

    Intervals are BCa (``scipy.stats.bootstrap``; unpaired resampling for two-sample
    effects, pair resampling for d_z), falling back to percentile when BCa is undefined;
    ``ci["method"]`` records which.

    Args:
        a: ``<float64>[n_seeds]`` candidate MSEs.
        b: ``<float64>[n_seeds]`` baseline MSEs, paired with ``a`` by index.
        config: Resampling and interval settings.

    Returns:
        Dict with ``prob_improvement`` (unpaired ``estimate`` = P(A<B) with ties half,
        ``p_less``, ``p_greater``, ``p_tie``, ``ci``); ``cliffs_delta`` (``estimate`` =
        P(A>B) - P(A<B), negative favours ``a``; ``ci``); ``hedges_g`` (unpaired,
        ``estimate``, ``ci``); ``cohens_dz`` (paired, ``estimate``, ``ci``); ``notes``.

    Raises:
        ValueError: If ``a`` and ``b`` are not 1-D arrays of equal length.
    """
    prep = _prepare(a, b)
    notes: list[str] = []
    prob = _prob_improvement_effect(prep.log_a, prep.log_b, config, notes)
    return {
        "prob_improvement": prob,
        "cliffs_delta": _cliffs_from_prob(prob, prep.log_a, prep.log_b),
        "hedges_g": _hedges_effect(prep.log_a, prep.log_b, config, notes),
        "cohens_dz": _dz_effect(prep.pair_a, prep.pair_b, config, notes),
        "notes": notes,
    }


def _prob_improvement_effect(
    x: np.ndarray, y: np.ndarray, config: StatsConfig, notes: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = probability_of_improvement(x, y)
    out["ci"] = _bootstrap_interval((x, y), _prob_less_ranked, config, "prob_improvement", notes)
    return out


def _cliffs_from_prob(prob: dict[str, Any], x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    # delta = 1 - 2 * P(A<B) (ties half); both bootstrap rules are transformation-respecting,
    # so mapping the P(A<B) interval gives the delta interval without a second bootstrap.
    ci = prob["ci"]
    return {
        "estimate": cliffs_delta(x, y),
        "ci": {
            "low": 1.0 - 2.0 * ci["high"],
            "high": 1.0 - 2.0 * ci["low"],
            "method": ci["method"],
        },
    }


def _hedges_effect(
    x: np.ndarray, y: np.ndarray, config: StatsConfig, notes: list[str]
) -> dict[str, Any]:
    estimate = hedges_g(x, y)
    if not np.isfinite(estimate):
        notes.append("hedges_g: needs >= 2 valid seeds per model and nonzero pooled sd")
        return {"estimate": _NAN, "ci": _nan_interval()}
    ci = _bootstrap_interval((x, y), _hedges_g_resampled, config, "hedges_g", notes)
    return {"estimate": estimate, "ci": ci}


def _dz_effect(
    pa: np.ndarray, pb: np.ndarray, config: StatsConfig, notes: list[str]
) -> dict[str, Any]:
    estimate = cohens_dz(pa, pb)
    if not np.isfinite(estimate):
        notes.append("cohens_dz: needs >= 2 pairs with non-constant differences")
        return {"estimate": _NAN, "ci": _nan_interval()}
    ci = _bootstrap_interval((pa - pb,), _standardized_mean_resampled, config, "cohens_dz", notes)
    return {"estimate": estimate, "ci": ci}


# ------------------------------------------------------------------------------- power


def paired_t_power(d_z: float, n: float, alpha: float) -> float:
    """Power of the two-sided paired t-test with ``n`` pairs at true effect ``d_z``.

    Exact under normal differences: ``P(|T| > t_crit)`` with ``T`` noncentral t,
    ``df = n - 1`` and noncentrality ``d_z * sqrt(n)``.

    Args:
        d_z: Standardized mean paired difference.
        n: Number of pairs (> 1; need not be an integer).
        alpha: Two-sided significance level.

    Returns:
        Power in [0, 1]; equals ``alpha`` when ``d_z == 0``.

    Example:
        >>> round(paired_t_power(0.0, 10, 0.05), 6)
        0.05
    """
    df = n - 1
    t_crit = stats.t.ppf(1 - alpha / 2, df)
    # Power is symmetric in the sign of d_z. Both tails are written as sf because
    # nct.cdf far in the lower tail returns NaN for some (df, nc); beyond nc = 1e6 the
    # power is 1 to double precision while nct itself returns NaN (around nc = 1e10).
    nc = min(abs(d_z) * math.sqrt(n), 1e6)
    return float(stats.nct.sf(t_crit, df, nc) + stats.nct.sf(t_crit, df, -nc))


def _n_required_paired_t(d_z: float, alpha: float, power: float) -> tuple[int | None, str]:
    z = stats.norm.ppf
    with np.errstate(over="ignore"):
        n_float = float(np.square((z(1 - alpha / 2) + z(power)) / abs(d_z)))
    if not math.isfinite(n_float):
        return None, "normal_approximation"
    n_normal = math.ceil(n_float)
    if n_normal > _MAX_SEARCH_N:
        return n_normal, "normal_approximation"
    # The t-test needs a seed or two more than the normal answer; step to the exact minimum.
    n = max(2, n_normal)
    while paired_t_power(d_z, n, alpha) < power:
        n += 1
    while n > 2 and paired_t_power(d_z, n - 1, alpha) >= power:
        n -= 1
    return n, "noncentral_t"


def power_analysis(d_z: float, n_pairs: int, config: StatsConfig = StatsConfig()) -> dict[str, Any]:
    """Seeds needed to detect effect ``d_z`` and the power achieved with ``n_pairs`` seeds.

    The paired t-test is solved exactly with the noncentral t. The Wilcoxon signed-rank
    answers divide the seed count by its asymptotic relative efficiency 3/π ≈ 0.955
    (:data:`WILCOXON_ARE`). Achieved power at the observed effect is a planning aid only
    (it is a function of the p-value), not evidence.

    Args:
        d_z: Effect size, normally the observed paired d_z on log10 MSE.
        n_pairs: Number of valid pairs now.
        config: ``alpha`` and the target ``power``.

    Returns:
        Dict with ``d_z``, ``alpha``, ``target_power``, ``n_pairs``,
        ``achieved_power_paired_t``, ``achieved_power_wilcoxon`` (t power at
        ``n_pairs * 3/π`` pairs), ``n_required_paired_t`` and ``n_required_wilcoxon``
        (int, or None when ``d_z`` is 0 or undefined: no finite number of seeds suffices),
        ``method`` and ``notes``.

    Example:
        >>> p = power_analysis(0.5, 10, StatsConfig())
        >>> p["n_required_paired_t"], p["n_required_wilcoxon"]
        (34, 36)
    """
    notes: list[str] = []
    out: dict[str, Any] = {
        "d_z": float(d_z),
        "alpha": config.alpha,
        "target_power": config.power,
        "n_pairs": int(n_pairs),
        "achieved_power_paired_t": _NAN,
        "achieved_power_wilcoxon": _NAN,
        "n_required_paired_t": None,
        "n_required_wilcoxon": None,
        "method": None,
        "notes": notes,
    }
    if not np.isfinite(d_z):
        notes.append("effect size d_z is undefined")
        return out
    if n_pairs >= 2:
        out["achieved_power_paired_t"] = paired_t_power(d_z, n_pairs, config.alpha)
        out["achieved_power_wilcoxon"] = paired_t_power(d_z, n_pairs * WILCOXON_ARE, config.alpha)
    if d_z == 0.0:
        notes.append("d_z is 0, no number of seeds detects it (n_required None)")
        return out
    n_t, method = _n_required_paired_t(d_z, config.alpha, config.power)
    if n_t is None:
        notes.append("d_z is too small for any representable number of seeds")
        return out
    out.update(
        n_required_paired_t=n_t,
        n_required_wilcoxon=math.ceil(n_t / WILCOXON_ARE),
        method=method,
    )
    return out


# ----------------------------------------------------------------------------- compare


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


def _decide(pvalue: float, median_log_ratio: float, alpha: float) -> Decision:
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
    config: StatsConfig = StatsConfig(),
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
    a_arr, b_arr = _validate_pair(a, b)
    prep = _prepare(a_arr, b_arr)
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
    decision = _decide(
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


# ------------------------------------------------------------------ multiple comparisons

ADJUSTMENT = "holm"


def holm(pvalues: npt.ArrayLike) -> np.ndarray:
    """Holm's step-down adjustment of p-values for a family of tests.

    Controls the family-wise error rate at any level under any dependence between the tests
    (the comparisons of a run share their baseline, so they are correlated). The ``i``-th
    smallest p-value is multiplied by ``m - i`` (``i`` from 0), the running maximum is taken
    and the result clipped to 1. Non-finite p-values (undecidable tests) stay NaN but still
    count in ``m``: they were asked, so the family is as large as the settings asked.

    Args:
        pvalues: ``<float64>[m]`` raw p-values.

    Returns:
        ``<float64>[m]`` adjusted p-values, in the input's order.

    Example:
        >>> holm([0.01, 0.04, 0.03]).round(4).tolist()
        [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be a 1-D array, got shape {p.shape}")
    out = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    factors = p.size - np.arange(len(order))
    out[order] = np.minimum(1.0, np.maximum.accumulate(p[order] * factors))
    return out


def benjamini_hochberg(pvalues: npt.ArrayLike) -> np.ndarray:
    """Benjamini–Hochberg q-values of a family of tests (false discovery rate).

    Computed by :func:`scipy.stats.false_discovery_control` (``method="bh"``): the ``i``-th
    smallest p-value (``i`` from 1) times ``m / i``, the running minimum from the largest down,
    clipped to 1. Declaring every test with ``q < level`` controls the expected share of false
    discoveries at ``level`` for independent or positively dependent tests. As in :func:`holm`,
    non-finite p-values (undecidable tests) stay NaN but still count in ``m``: they are ranked
    as p = 1, which lowers no other q-value's bound.

    Args:
        pvalues: ``<float64>[m]`` raw p-values, each in [0, 1] or NaN.

    Returns:
        ``<float64>[m]`` q-values, in the input's order.

    Raises:
        ValueError: If ``pvalues`` is not 1-D or a finite p-value lies outside [0, 1].

    Example:
        >>> benjamini_hochberg([0.01, 0.04, 0.03]).round(4).tolist()  # 0.01*3, 0.04*3/3, 0.03*3/2
        [0.03, 0.04, 0.04]
        >>> benjamini_hochberg([0.01, float("nan"), 0.02]).round(4).tolist()  # m = 3, not 2
        [0.03, nan, 0.03]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be a 1-D array, got shape {p.shape}")
    finite = np.isfinite(p)
    if p.size == 0:
        return p.copy()
    q = stats.false_discovery_control(np.where(finite, p, 1.0), method="bh")
    return np.where(finite, q, np.nan)


def compare_family(
    candidates: dict[str, npt.ArrayLike],
    baseline: npt.ArrayLike,
    config: StatsConfig = StatsConfig(),
    *,
    baseline_name: str = "vanilla",
) -> dict[str, Comparison]:
    """Compare each candidate with one baseline, the primary tests corrected by Holm.

    Each candidate gets :func:`compare` against the baseline; with more than one candidate,
    its decision comes from the Holm-adjusted Wilcoxon p-value (:func:`holm`) at
    ``config.alpha``, recorded in :attr:`Comparison.adjustment`. With one candidate this is
    :func:`compare` itself.

    Args:
        candidates: ``{name: <float64>[n_seeds]}`` test MSEs, each paired with ``baseline``.
        baseline: ``<float64>[n_seeds]`` the baseline's test MSEs.
        config: Levels, resample count and seed.
        baseline_name: Display name of the baseline.

    Returns:
        ``{name: Comparison}`` in the order of ``candidates``.

    Example:
        >>> good = [1e-4, 2e-4, 5e-5, 1e-4, 3e-4, 8e-5, 1e-4, 2e-4]
        >>> same = [1e-3, 4e-3, 2e-3, 1e-3, 5e-3, 9e-4, 2e-3, 1e-3]
        >>> family = compare_family({"x": good, "y": same}, same, StatsConfig(n_resamples=100))
        >>> family["x"].paired["wilcoxon"]["pvalue"]  # all 8 pairs favour x: 2 / 2**8
        0.0078125
        >>> family["x"].adjustment["pvalue"], family["x"].decision  # Holm, m = 2
        (0.015625, 'a_better')
    """
    if not candidates:
        raise ValueError("candidates is empty; give at least one model to compare")
    family = {
        name: compare(values, baseline, config, names=(name, baseline_name))
        for name, values in candidates.items()
    }
    if len(family) == 1:
        return family
    raw = [c.paired["wilcoxon"]["pvalue"] for c in family.values()]
    adjusted = holm(raw)
    out = {}
    for (name, comparison), p_adj in zip(family.items(), adjusted, strict=True):
        adjustment = {
            "method": ADJUSTMENT,
            "family_size": len(family),
            "pvalue": float(p_adj) if np.isfinite(p_adj) else None,
        }
        decision = _decide(p_adj, comparison.paired["median_log10_ratio"]["estimate"], config.alpha)
        out[name] = dataclasses.replace(comparison, decision=decision, adjustment=adjustment)
    return out
