"""The significance tests: the primary test, the paired and the unpaired statistics.

:func:`primary_test` is the test fixed in advance (:data:`PRIMARY_TEST`, the two-sided
Wilcoxon signed-rank test on the paired log10 MSEs); :func:`paired_tests` adds the sign-flip
permutation test, the median log10 ratio, the pair correlation and the share of pairs won;
:func:`unpaired_tests` treats the two models' seeds as independent samples (Welch's t,
Mann-Whitney U).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from fibjax.stats.config import StatsConfig
from fibjax.stats.samples import NAN, bootstrap_interval, nan_interval, prepare, stream_rng

PRIMARY_TEST = "wilcoxon_signed_rank_log10_mse"


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
    prep = prepare(a, b)
    notes: list[str] = []
    out = _wilcoxon(prep.pair_a - prep.pair_b, notes)
    out["notes"] = notes
    return out


def _wilcoxon(diff: np.ndarray, notes: list[str]) -> dict[str, Any]:
    n_nonzero = int(np.count_nonzero(diff))
    out = {
        "test": PRIMARY_TEST,
        "statistic": NAN,
        "pvalue": NAN,
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
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    config: StatsConfig = StatsConfig(),  # noqa: B008 (frozen, hence immutable)
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
    prep = prepare(a, b)
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
        return {"statistic": NAN, "pvalue": NAN}
    # "samples" permutes within each pair, i.e. random sign flips of the differences;
    # SciPy enumerates all 2**n flips exactly when that is fewer than n_resamples.
    res = stats.permutation_test(
        (pa, pb),
        _mean_difference,
        permutation_type="samples",
        vectorized=True,
        n_resamples=config.n_resamples,
        alternative="two-sided",
        rng=stream_rng(config, "permutation_mean_diff"),
    )
    return {"statistic": float(res.statistic), "pvalue": float(min(res.pvalue, 1.0))}


def _median_log_ratio(diff: np.ndarray, config: StatsConfig, notes: list[str]) -> dict[str, Any]:
    estimate = float(np.median(diff)) if diff.size else NAN
    # Resampling the differences is resampling whole pairs (a paired bootstrap).
    ci = bootstrap_interval((diff,), np.median, config, "median_log10_ratio", notes)
    return {"estimate": estimate, "ci": ci}


def _pair_correlation(pa: np.ndarray, pb: np.ndarray, notes: list[str]) -> dict[str, float]:
    out = dict.fromkeys(("pearson_r", "pearson_pvalue", "spearman_rho", "spearman_pvalue"), NAN)
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
        return {"estimate": NAN, "wins": 0, "ties": 0, "n": 0, "ci": nan_interval()}
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
    prep = prepare(a, b)
    notes: list[str] = []
    return {
        "n_a": int(prep.log_a.size),
        "n_b": int(prep.log_b.size),
        "welch": _welch(prep.log_a, prep.log_b, notes),
        "mann_whitney": _mann_whitney(prep.log_a, prep.log_b, notes),
        "notes": notes,
    }


def _welch(x: np.ndarray, y: np.ndarray, notes: list[str]) -> dict[str, float]:
    out = {"statistic": NAN, "pvalue": NAN, "df": NAN}
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
        return {"statistic": NAN, "pvalue": NAN}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.mannwhitneyu(x, y, alternative="two-sided")
    return {"statistic": float(res.statistic), "pvalue": float(res.pvalue)}
