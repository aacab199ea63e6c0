"""The settings of a statistical comparison: :class:`StatsConfig`, validated on construction."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


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
