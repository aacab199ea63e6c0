"""Per-seed MSEs made ready for the statistics, and what every statistic shares.

Validation of a pair of samples (:func:`validate_pair`, :func:`prepare` and its
:class:`Prepared`: the log10 MSE of each model's valid seeds and of the valid pairs), one
resampling generator per statistic (:func:`stream_rng`), bootstrap intervals with their fallback
(:func:`bootstrap_interval`, :func:`nan_interval`), and the per-model summary
(:func:`describe_sample`).
"""

from __future__ import annotations

import dataclasses
import warnings
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from fibjax.stats.config import StatsConfig

_TINY = np.finfo(np.float64).tiny
LOG10_TINY = float(np.log10(_TINY))  # where an MSE of exactly 0 lies on the log10 scale
NAN = float("nan")


@dataclasses.dataclass(frozen=True)
class Prepared:
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


def validate_pair(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` as float64 arrays; ``ValueError`` unless both are 1-D of equal length."""
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


def from_log10(value: float) -> float:
    """An MSE back from the log10 scale, where 0 was mapped to ``log10(tiny)``: 0 at that floor.

    >>> from_log10(-2.0), from_log10(float(np.log10(np.finfo(np.float64).tiny)))
    (0.01, 0.0)
    """
    return 0.0 if value <= LOG10_TINY else float(10.0**value)


def _log10(x: np.ndarray) -> np.ndarray:
    # A perfect fit (MSE == 0) would give -inf and poison every mean; tiny keeps it finite.
    return np.log10(np.maximum(x, _TINY))


def prepare(a: npt.ArrayLike, b: npt.ArrayLike) -> Prepared:
    """Validate a pair of per-seed MSEs and take log10 of the valid seeds and pairs."""
    a_arr, b_arr = validate_pair(a, b)
    ok_a, ok_b = _valid(a_arr), _valid(b_arr)
    both = ok_a & ok_b
    return Prepared(
        log_a=_log10(a_arr[ok_a]),
        log_b=_log10(b_arr[ok_b]),
        pair_a=_log10(a_arr[both]),
        pair_b=_log10(b_arr[both]),
        n_seeds=int(a_arr.size),
        n_dropped_a=int(a_arr.size - ok_a.sum()),
        n_dropped_b=int(b_arr.size - ok_b.sum()),
    )


# --------------------------------------------------------------------------- bootstrap


def stream_rng(config: StatsConfig, stream: str) -> np.random.Generator:
    """The resampling generator of the statistic named ``stream``, under ``config.seed``."""
    # One generator per statistic, keyed by its name: results do not depend on call order.
    return np.random.default_rng([config.seed, zlib.crc32(stream.encode())])


def nan_interval() -> dict[str, Any]:
    """An undefined interval: NaN bounds and no method."""
    return {"low": NAN, "high": NAN, "method": None}


def bootstrap_interval(
    samples: tuple[np.ndarray, ...],
    statistic: Callable[..., Any],
    config: StatsConfig,
    stream: str,
    notes: list[str],
) -> dict[str, Any]:
    """BCa bootstrap interval, falling back to percentile when BCa is undefined."""
    if min(s.size for s in samples) < 2:
        notes.append(f"{stream}: interval needs >= 2 values per sample")
        return nan_interval()
    kwargs = dict(confidence_level=config.confidence, vectorized=True)
    with warnings.catch_warnings():
        # BCa warns (and returns NaN) on degenerate data; the fallback below handles it.
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            samples,
            statistic,
            n_resamples=config.n_resamples,
            method="BCa",
            rng=stream_rng(config, stream),
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
    return nan_interval()


def _finite_interval(res: Any) -> bool:
    return bool(
        np.isfinite(res.confidence_interval.low) and np.isfinite(res.confidence_interval.high)
    )


def _interval(res: Any, method: str) -> dict[str, Any]:
    ci = res.confidence_interval
    return {"low": float(ci.low), "high": float(ci.high), "method": method}


# ------------------------------------------------------------------ per-model summary


def describe_sample(
    values: npt.ArrayLike,
    config: StatsConfig = StatsConfig(),  # noqa: B008 (frozen, hence immutable)
) -> dict[str, Any]:
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
    out["mean_ci"] = bootstrap_interval((logs,), np.mean, config, "mean", notes)
    out["median_ci"] = bootstrap_interval((logs,), np.median, config, "median", notes)
    with np.errstate(over="ignore"):
        # A zero factor makes a geometric mean zero (10 ** mean would give about 1e-300).
        zero = bool(np.any(x[_valid(x)] == 0.0))
        out["geometric_mean_mse"] = 0.0 if zero else float(np.power(10.0, out["mean"]))
    out["notes"] = notes
    return out


def _location_scale(logs: np.ndarray, notes: list[str]) -> dict[str, float]:
    keys = ("mean", "std", "median", "q25", "q75", "iqr", "iqm")
    if logs.size == 0:
        notes.append("no valid seeds: every statistic is undefined")
        return dict.fromkeys(keys, NAN)
    q25, median, q75 = np.quantile(logs, [0.25, 0.5, 0.75])
    if logs.size < 2:
        notes.append("std needs >= 2 valid seeds")
    return {
        "mean": float(np.mean(logs)),
        "std": float(np.std(logs, ddof=1)) if logs.size >= 2 else NAN,
        "median": float(median),
        "q25": float(q25),
        "q75": float(q75),
        "iqr": float(q75 - q25),
        "iqm": float(stats.trim_mean(logs, 0.25)),
    }
