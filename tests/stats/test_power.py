"""Tests of fibjax.stats.power against tables and a simulation.

References are hand-worked (numbers derived in the comments) or come from SciPy / NumPy
called directly in the test, never from fibjax.stats itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from fibjax import stats as fs


def test_power_against_table_and_simulation():
    # Paired t, d_z = 0.5, alpha = 0.05 two-sided, power 0.8: 34 pairs (G*Power / Cohen's
    # tables); the normal approximation ((1.96 + 0.8416) / 0.5)**2 = 31.4 is a bit low.
    p = fs.power_analysis(0.5, 10, fs.StatsConfig())
    assert p["n_required_paired_t"] == 34
    assert p["n_required_wilcoxon"] == math.ceil(34 * math.pi / 3)  # divide by ARE 3/pi
    # Achieved power at n = 10 against a Monte Carlo of scipy's one-sample t-test.
    rng = np.random.default_rng(5)
    sims = rng.normal(0.5, 1.0, size=(4000, 10))
    simulated = np.mean(scipy.stats.ttest_1samp(sims, 0.0, axis=1).pvalue < 0.05)
    assert p["achieved_power_paired_t"] == pytest.approx(simulated, abs=0.03)


def test_power_with_zero_effect():
    p = fs.power_analysis(0.0, 10, fs.StatsConfig())
    assert p["n_required_paired_t"] is None and p["n_required_wilcoxon"] is None
    assert p["achieved_power_paired_t"] == pytest.approx(0.05)  # power at H0 = alpha
    assert p["notes"]
