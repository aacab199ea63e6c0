"""Tests of fibjax.stats.family: Holm's adjustment and families of comparisons.

References are hand-worked (numbers derived in the comments) or come from SciPy / NumPy
called directly in the test, never from fibjax.stats itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fibjax import stats as fs


def _holm_by_definition(p):
    """Holm's adjusted p-values from the step-down definition, one hypothesis at a time."""
    m = len(p)
    ranked = sorted(range(m), key=lambda i: p[i])
    out = [0.0] * m
    for position, i in enumerate(ranked):
        steps = [min(1.0, (m - k) * p[ranked[k]]) for k in range(position + 1)]
        out[i] = max(steps)
    return out


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8))
@settings(max_examples=60, deadline=None)
def test_holm_matches_its_definition_and_sits_between_raw_and_bonferroni(p):
    adjusted = fs.holm(p)
    np.testing.assert_allclose(adjusted, _holm_by_definition(p), rtol=1e-12)
    assert np.all(adjusted >= np.asarray(p) - 1e-15)
    assert np.all(adjusted <= np.minimum(1.0, np.asarray(p) * len(p)) + 1e-15)


def test_holm_keeps_undecidable_tests_in_the_family():
    adjusted = fs.holm([0.01, float("nan"), 0.02])
    assert math.isnan(adjusted[1])
    np.testing.assert_allclose(adjusted[[0, 2]], [0.03, 0.04])  # m = 3, not 2


def test_family_of_one_is_the_plain_comparison():
    rng = np.random.default_rng(3)
    a, b = rng.lognormal(size=12), rng.lognormal(size=12)
    config = fs.StatsConfig(n_resamples=200)
    (only,) = fs.compare_family({"x": a}, b, config).values()
    assert only == fs.compare(a, b, config, names=("x", "vanilla"))
    assert only.adjustment is None


def test_family_decisions_use_holm_adjusted_pvalues():
    # Two candidates each better on 6 of 6 pairs: raw p = 2/2**6 = 0.03125 < 0.05, but Holm's
    # smallest adjusted p is 2 x 0.03125 = 0.0625, so neither is declared better.
    base = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    family = fs.compare_family(
        {"x": base / 10, "y": base / 20}, base, fs.StatsConfig(n_resamples=200)
    )
    for comparison in family.values():
        assert comparison.paired["wilcoxon"]["pvalue"] == pytest.approx(0.03125)
        assert comparison.adjustment == {"method": "holm", "family_size": 2, "pvalue": 0.0625}
        assert comparison.decision == "undecided"
        assert comparison.to_dict()["adjustment"]["pvalue"] == 0.0625
