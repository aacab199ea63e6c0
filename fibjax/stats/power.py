"""Power analysis: the seeds needed to detect an effect, and the power of the seeds run."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from fibjax.stats.config import StatsConfig
from fibjax.stats.samples import NAN

# Asymptotic relative efficiency of the Wilcoxon signed-rank test vs the t-test under
# normality (log MSE is roughly normal when MSE is log-normal).
WILCOXON_ARE = 3.0 / math.pi
# Beyond this many seeds the noncentral-t search is pointless; the normal answer is used.
_MAX_SEARCH_N = 1_000_000


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


def power_analysis(
    d_z: float,
    n_pairs: int,
    config: StatsConfig = StatsConfig(),  # noqa: B008 (frozen, hence immutable)
) -> dict[str, Any]:
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
        "achieved_power_paired_t": NAN,
        "achieved_power_wilcoxon": NAN,
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
