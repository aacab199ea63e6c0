"""Tests of fibjax.stats.effects: hand-worked effect sizes.

References are hand-worked (numbers derived in the comments) or come from SciPy / NumPy
called directly in the test, never from fibjax.stats itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from fibjax import stats as fs

# Few resamples keep the suite fast; the statistics under test do not depend on the count.
FAST = fs.StatsConfig(n_resamples=200)


def test_probability_of_improvement_hand_case_with_tie():
    # a = [1, 2, 3], b = [2, 4]: the 6 pairs (a, b) are
    # (1,2) <, (1,4) <, (2,2) tie, (2,4) <, (3,2) >, (3,4) <  ->  4 less, 1 greater, 1 tie.
    p = fs.probability_of_improvement([1.0, 2.0, 3.0], [2.0, 4.0])
    assert p["p_less"] == pytest.approx(4 / 6)
    assert p["p_greater"] == pytest.approx(1 / 6)
    assert p["p_tie"] == pytest.approx(1 / 6)
    assert p["estimate"] == pytest.approx(4.5 / 6)  # ties count half: (4 + 0.5) / 6 = 0.75
    # Cross-check with SciPy: U of the first sample = #(a > b) + ties / 2 = 1.5.
    u_a = scipy.stats.mannwhitneyu([1.0, 2.0, 3.0], [2.0, 4.0]).statistic
    assert p["estimate"] == pytest.approx(1 - u_a / 6)


def test_cliffs_delta_hand_case_with_tie():
    # Same pairs as above: delta = P(a > b) - P(a < b) = (1 - 4) / 6 = -0.5 (a lower).
    assert fs.cliffs_delta([1.0, 2.0, 3.0], [2.0, 4.0]) == pytest.approx(-0.5)
    assert fs.cliffs_delta([2.0, 4.0], [1.0, 2.0, 3.0]) == pytest.approx(0.5)
    assert fs.cliffs_delta([1.0, 1.0], [1.0]) == 0.0  # all ties


def test_effect_sizes_cliffs_and_improvement_are_consistent():
    a = np.array([1e-3, 1e-2, 1e-1])  # log10: -3, -2, -1
    b = np.array([1e-2, 1e-4, 1.0])  # log10: -2, -4,  0
    # a vs b pairs: (-3: < -2, > -4, < 0), (-2: tie, >, <), (-1: >, >, <)
    # -> less 4, greater 4, tie 1 of 9: delta = 0, P(A<B) with ties half = 4.5 / 9.
    effects = fs.effect_sizes(a, b, FAST)
    assert effects["cliffs_delta"]["estimate"] == pytest.approx(0.0)
    assert effects["prob_improvement"]["estimate"] == pytest.approx(0.5)
    assert effects["prob_improvement"]["p_tie"] == pytest.approx(1 / 9)


def test_hedges_g_against_numpy_formula():
    rng = np.random.default_rng(3)
    x, y = rng.normal(0.0, 1.0, 8), rng.normal(0.7, 1.5, 12)
    n_x, n_y = x.size, y.size
    df = n_x + n_y - 2
    s_pooled = np.sqrt(((n_x - 1) * x.var(ddof=1) + (n_y - 1) * y.var(ddof=1)) / df)
    d = (x.mean() - y.mean()) / s_pooled
    j_exact = math.gamma(df / 2) / (math.sqrt(df / 2) * math.gamma((df - 1) / 2))
    assert fs.hedges_g(x, y) == pytest.approx(j_exact * d, rel=1e-12)
    # The usual approximation J = 1 - 3 / (4 df - 1) agrees to ~1e-4 at df = 18.
    assert fs.hedges_g(x, y) == pytest.approx((1 - 3 / (4 * df - 1)) * d, rel=1e-3)


def test_hedges_g_hand_case():
    # means 2 and 4, both variances 1 -> d = -2; J(4) = Γ(2) / (√2 Γ(1.5)) = 0.797885
    assert fs.hedges_g([1.0, 2.0, 3.0], [3.0, 4.0, 5.0]) == pytest.approx(-2 * 0.7978845608)


def test_cohens_dz_hand_case():
    # diffs -1, 0, -2: mean -1, sd (ddof=1) = sqrt((0 + 1 + 1) / 2) = 1 -> d_z = -1
    assert fs.cohens_dz([1.0, 2.0, 3.0], [2.0, 2.0, 5.0]) == pytest.approx(-1.0)
    assert math.isnan(fs.cohens_dz([1.0], [2.0]))
    assert math.isnan(fs.cohens_dz([1.0, 2.0], [2.0, 3.0]))  # constant differences
