"""Multi-seed statistical comparison of two models' test MSEs, built on ``scipy.stats``.

The package re-exports its public API, so ``fibjax.stats.compare`` and the like work as one
name space. Its modules, from the bottom up:

* :mod:`fibjax.stats.config`: :class:`StatsConfig`, the levels, resample count and seed.
* :mod:`fibjax.stats.samples`: validation, log10, resampling streams, bootstrap intervals
  and the per-model summary :func:`describe_sample`.
* :mod:`fibjax.stats.significance`: :func:`primary_test`, :func:`paired_tests`,
  :func:`unpaired_tests`.
* :mod:`fibjax.stats.effects`: probability of improvement, Cliff's delta, Hedges' g,
  Cohen's d_z, :func:`effect_sizes`.
* :mod:`fibjax.stats.power`: :func:`paired_t_power`, :func:`power_analysis`.
* :mod:`fibjax.stats.comparison`: :class:`Comparison` and :func:`compare`.
* :mod:`fibjax.stats.family`: :func:`holm`, :func:`benjamini_hochberg`,
  :func:`compare_family`.

Conventions used throughout the package:

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

from fibjax.stats.comparison import Comparison, Decision, compare
from fibjax.stats.config import StatsConfig
from fibjax.stats.effects import (
    cliffs_delta,
    cohens_dz,
    effect_sizes,
    hedges_g,
    probability_of_improvement,
)
from fibjax.stats.family import ADJUSTMENT, benjamini_hochberg, compare_family, holm
from fibjax.stats.power import WILCOXON_ARE, paired_t_power, power_analysis
from fibjax.stats.samples import describe_sample
from fibjax.stats.significance import PRIMARY_TEST, paired_tests, primary_test, unpaired_tests

__all__ = [
    "ADJUSTMENT",
    "PRIMARY_TEST",
    "WILCOXON_ARE",
    "Comparison",
    "Decision",
    "StatsConfig",
    "benjamini_hochberg",
    "cliffs_delta",
    "cohens_dz",
    "compare",
    "compare_family",
    "describe_sample",
    "effect_sizes",
    "hedges_g",
    "holm",
    "paired_t_power",
    "paired_tests",
    "power_analysis",
    "primary_test",
    "probability_of_improvement",
    "unpaired_tests",
]
