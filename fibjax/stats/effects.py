"""Effect sizes of the candidate against the baseline, each with a bootstrap interval.

Probability of improvement and Cliff's delta (rank based, unpaired), Hedges' g (unpaired) and
Cohen's d_z (paired), and :func:`effect_sizes`, which computes them all on log10 MSE.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from fibjax.stats.config import StatsConfig
from fibjax.stats.samples import NAN, bootstrap_interval, nan_interval, prepare


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
        return dict.fromkeys(("p_less", "p_greater", "p_tie", "estimate"), NAN)
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
    return (greater - less) / total if total else NAN


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
        return NAN
    g = float(_hedges_g(x_arr, y_arr))
    return g if np.isfinite(g) else NAN


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
        return NAN
    dz = float(_standardized_mean(diff))
    return dz if np.isfinite(dz) else NAN


def _standardized_mean(diff: np.ndarray, axis: int = -1) -> np.ndarray:
    return _standardize(np.mean(diff, axis=axis), np.std(diff, axis=axis, ddof=1), _noise(diff))


def _standardized_mean_resampled(diff: np.ndarray, axis: int = -1) -> np.ndarray:
    # Same rationale as _hedges_g_resampled: an all-equal resample of zeros counts as 0.
    return np.nan_to_num(_standardized_mean(diff, axis), nan=0.0, posinf=np.inf, neginf=-np.inf)


def effect_sizes(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    config: StatsConfig = StatsConfig(),  # noqa: B008 (frozen, hence immutable)
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
    prep = prepare(a, b)
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
    out["ci"] = bootstrap_interval((x, y), _prob_less_ranked, config, "prob_improvement", notes)
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
        return {"estimate": NAN, "ci": nan_interval()}
    ci = bootstrap_interval((x, y), _hedges_g_resampled, config, "hedges_g", notes)
    return {"estimate": estimate, "ci": ci}


def _dz_effect(
    pa: np.ndarray, pb: np.ndarray, config: StatsConfig, notes: list[str]
) -> dict[str, Any]:
    estimate = cohens_dz(pa, pb)
    if not np.isfinite(estimate):
        notes.append("cohens_dz: needs >= 2 pairs with non-constant differences")
        return {"estimate": NAN, "ci": nan_interval()}
    ci = bootstrap_interval((pa - pb,), _standardized_mean_resampled, config, "cohens_dz", notes)
    return {"estimate": estimate, "ci": ci}
