"""Families of comparisons: Holm and Benjamini-Hochberg adjustments, :func:`compare_family`."""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt
from scipy import stats

from fibjax.stats.comparison import Comparison, compare, decide
from fibjax.stats.config import StatsConfig

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
    config: StatsConfig = StatsConfig(),  # noqa: B008 (frozen, hence immutable)
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
        decision = decide(p_adj, comparison.paired["median_log10_ratio"]["estimate"], config.alpha)
        out[name] = dataclasses.replace(comparison, decision=decision, adjustment=adjustment)
    return out
