"""Tests of fibjax.stats.significance and fibjax.stats.comparison: the tests against SciPy,
their calibration, and compare().

References are hand-worked (numbers derived in the comments) or come from SciPy / NumPy
called directly in the test, never from fibjax.stats itself.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from fibjax import stats as fs

# Few resamples keep the suite fast; the statistics under test do not depend on the count.
FAST = fs.StatsConfig(n_resamples=200)


def _lognormal_pairs(rng, n, shift=0.0, seed_sd=1.0, noise_sd=0.3):
    """MSEs of two models sharing a per-seed component (log10 scale), b shifted by `shift`."""
    shared = rng.normal(-3.0, seed_sd, n)
    log_a = shared + rng.normal(0.0, noise_sd, n)
    log_b = shared + shift + rng.normal(0.0, noise_sd, n)
    return 10.0**log_a, 10.0**log_b


def _all_pvalues(tree):
    """Every value stored under a key that names a p-value, anywhere in a to_dict() tree."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if "pvalue" in key:
                yield value
            else:
                yield from _all_pvalues(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _all_pvalues(value)


# ---------------------------------------------------------------- tests against SciPy


def test_primary_test_matches_scipy_wilcoxon():
    a, b = _lognormal_pairs(np.random.default_rng(0), 15, shift=0.2)
    expected = scipy.stats.wilcoxon(np.log10(a), np.log10(b))
    result = fs.primary_test(a, b)
    assert result["test"] == "wilcoxon_signed_rank_log10_mse"
    assert result["statistic"] == pytest.approx(expected.statistic)
    assert result["pvalue"] == pytest.approx(expected.pvalue, rel=1e-12)


def test_compare_uses_the_primary_test():
    a, b = _lognormal_pairs(np.random.default_rng(1), 12, shift=0.3)
    comparison = fs.compare(a, b, FAST)
    assert comparison.primary_test == "wilcoxon_signed_rank_log10_mse"
    assert comparison.primary_test == fs.PRIMARY_TEST
    expected = scipy.stats.wilcoxon(np.log10(a), np.log10(b)).pvalue
    assert comparison.paired["wilcoxon"]["pvalue"] == pytest.approx(expected, rel=1e-12)
    assert comparison.paired["wilcoxon"]["pvalue"] == fs.primary_test(a, b)["pvalue"]


def test_unpaired_tests_match_scipy():
    a, b = _lognormal_pairs(np.random.default_rng(2), 10, shift=0.5)
    log_a, log_b = np.log10(a), np.log10(b)
    welch = scipy.stats.ttest_ind(log_a, log_b, equal_var=False)
    mwu = scipy.stats.mannwhitneyu(log_a, log_b, alternative="two-sided")
    result = fs.unpaired_tests(a, b)
    assert result["welch"]["statistic"] == pytest.approx(welch.statistic, rel=1e-12)
    assert result["welch"]["pvalue"] == pytest.approx(welch.pvalue, rel=1e-12)
    assert result["welch"]["df"] == pytest.approx(welch.df, rel=1e-12)
    assert result["mann_whitney"]["statistic"] == pytest.approx(mwu.statistic)
    assert result["mann_whitney"]["pvalue"] == pytest.approx(mwu.pvalue, rel=1e-12)


def test_paired_permutation_exact_small_sample():
    # 5 pairs, all with a < b and distinct differences: of the 2**5 sign flips only
    # "all negative" and "all positive" reach |mean| >= observed -> p = 2 / 32.
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0]) * 1e-4
    b = np.array([2.0, 5.0, 9.0, 20.0, 60.0]) * 1e-4
    perm = fs.paired_tests(a, b, FAST)["permutation_mean_diff"]
    assert perm["pvalue"] == pytest.approx(2 / 32)
    assert perm["statistic"] == pytest.approx(np.mean(np.log10(a) - np.log10(b)))


def test_paired_correlation_matches_scipy():
    a, b = _lognormal_pairs(np.random.default_rng(4), 10)
    corr = fs.paired_tests(a, b, FAST)["correlation"]
    pearson = scipy.stats.pearsonr(np.log10(a), np.log10(b))
    spearman = scipy.stats.spearmanr(np.log10(a), np.log10(b))
    assert corr["pearson_r"] == pytest.approx(pearson.statistic)
    assert corr["spearman_rho"] == pytest.approx(spearman.statistic)
    assert corr["pearson_r"] > 0.5  # the shared per-seed component makes pairing useful


def test_prob_a_wins_with_wilson_interval_by_hand():
    a = np.array([1.0, 1.0, 1.0, 5.0, 2.0])
    b = np.array([2.0, 2.0, 2.0, 2.0, 2.0])  # wins: 3 (a < b), 1 loss, 1 tie
    wins = fs.paired_tests(a, b, FAST)["prob_a_wins"]
    assert (wins["wins"], wins["ties"], wins["n"]) == (3, 1, 5)
    assert wins["estimate"] == pytest.approx(0.6)
    # Wilson score interval by formula, z = 1.959964, p = 0.6, n = 5.
    z, p, n = scipy.stats.norm.ppf(0.975), 0.6, 5
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    assert wins["ci"]["low"] == pytest.approx(centre - half)
    assert wins["ci"]["high"] == pytest.approx(centre + half)


# ------------------------------------------------------------- calibration (synthetic)


def test_primary_test_a_a_false_positive_rate():
    # A/A: both models from the same log-normal, sharing a per-seed component.
    rng = np.random.default_rng(7)
    rejections = 0
    for _ in range(200):
        a, b = _lognormal_pairs(rng, 20)
        rejections += fs.primary_test(a, b)["pvalue"] < 0.05
    assert 0.02 <= rejections / 200 <= 0.08


# ---------------------------------------------------------------------- compare() API


def test_direction_when_a_is_clearly_better():
    a, b = _lognormal_pairs(np.random.default_rng(8), 15, shift=1.0)  # b ten times worse
    c = fs.compare(a, b, FAST)
    assert c.decision == "a_better"
    assert c.paired["median_log10_ratio"]["estimate"] < 0
    assert c.paired["median_log10_ratio"]["ci"]["high"] < 0
    assert c.paired["prob_a_wins"]["estimate"] > 0.5
    assert c.effects["prob_improvement"]["estimate"] > 0.5
    assert c.effects["cliffs_delta"]["estimate"] < 0  # documented: negative favours a
    assert c.effects["hedges_g"]["estimate"] < 0
    assert c.effects["cohens_dz"]["estimate"] < 0
    assert fs.compare(b, a, FAST).decision == "b_better"


def test_undecided_when_models_are_equal():
    a, b = _lognormal_pairs(np.random.default_rng(9), 10)
    assert fs.compare(a, b, FAST).decision == "undecided"


def test_divergent_seeds_are_dropped_and_counted():
    a, b = _lognormal_pairs(np.random.default_rng(10), 10, shift=0.5)
    a[[1, 3]] = [np.nan, np.inf]
    b[[3, 5]] = [np.nan, -np.inf]
    c = fs.compare(a, b, FAST)
    assert (c.n_dropped_a, c.n_dropped_b) == (2, 2)
    both_finite = np.isfinite(a) & np.isfinite(b)
    assert c.n_pairs == both_finite.sum() == 7
    assert (c.summary_a["n"], c.summary_b["n"]) == (8, 8)
    assert (c.unpaired["n_a"], c.unpaired["n_b"]) == (8, 8)
    expected = scipy.stats.wilcoxon(np.log10(a[both_finite]), np.log10(b[both_finite]))
    assert c.paired["wilcoxon"]["pvalue"] == pytest.approx(expected.pvalue)
    d = c.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["n_dropped"] == {"a": 2, "b": 2} and d["n_pairs"] == 7
    assert any("dropped" in note for note in d["notes"])


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([np.nan, np.nan, np.nan], [np.nan, np.nan, np.nan]),  # every seed diverged
        ([np.nan, 1e-3, np.nan], [1e-2, 1e-2, np.inf]),  # one usable pair
        ([1e-3, 1e-3, 1e-3], [1e-3, 1e-3, 1e-3]),  # all identical
        ([1e-3, 1e-3, 1e-3, 1e-3], [1e-2, 1e-2, 1e-2, 1e-2]),  # constant per model
        ([], []),
    ],
)
def test_degenerate_inputs_give_nan_and_notes(a, b):
    c = fs.compare(a, b, FAST)
    d = c.to_dict()
    json.dumps(d, allow_nan=False)
    assert c.decision == "undecided"
    assert c.notes
    assert d["effects"]["cohens_dz"]["estimate"] is None
    assert d["power"]["n_required_paired_t"] is None


def test_compare_is_deterministic():
    a, b = _lognormal_pairs(np.random.default_rng(11), 12, shift=0.2)
    first = fs.compare(a, b, FAST).to_dict()
    second = fs.compare(a.copy(), b.copy(), FAST).to_dict()
    assert json.dumps(first, allow_nan=False) == json.dumps(second, allow_nan=False)
    reseeded = fs.compare(a, b, fs.StatsConfig(n_resamples=200, seed=1)).to_dict()
    assert reseeded["summary"]["a"]["mean_ci"] != first["summary"]["a"]["mean_ci"]


def test_to_dict_structure():
    a, b = _lognormal_pairs(np.random.default_rng(12), 8, shift=0.5)
    d = fs.compare(a, b, FAST, names=("attn", "rnn")).to_dict()
    assert set(d) == {
        "names",
        "primary_test",
        "decision",
        "n_seeds",
        "n_pairs",
        "n_dropped",
        "summary",
        "paired",
        "unpaired",
        "effects",
        "power",
        "notes",
        "config",
        "adjustment",
    }
    assert d["adjustment"] is None
    assert d["names"] == {"a": "attn", "b": "rnn"}
    assert d["config"] == {
        "alpha": 0.05,
        "confidence": 0.95,
        "power": 0.8,
        "n_resamples": 200,
        "seed": 0,
    }
    assert json.loads(json.dumps(d, allow_nan=False)) == d


# --------------------------------------------------------------------------- properties


@st.composite
def _paired_mses(draw, allow_invalid=False):
    n = draw(st.integers(min_value=1, max_value=12))
    value = st.floats(min_value=1e-20, max_value=1e20, allow_subnormal=False)
    if allow_invalid:
        value = st.one_of(value, st.sampled_from([np.nan, np.inf, 0.0]))
    a = draw(st.lists(value, min_size=n, max_size=n))
    b = draw(st.lists(value, min_size=n, max_size=n))
    return np.array(a), np.array(b)


@settings(max_examples=30, deadline=None)
@given(_paired_mses())
def test_property_compare_is_well_formed_and_antisymmetric(pair):
    a, b = pair
    forward, backward = fs.compare(a, b, FAST), fs.compare(b, a, FAST)
    d = forward.to_dict()
    json.dumps(d, allow_nan=False)
    for p in _all_pvalues(d):
        assert p is None or 0.0 <= p <= 1.0
    prob = forward.effects["prob_improvement"]
    assert prob["p_less"] + prob["p_greater"] + prob["p_tie"] == pytest.approx(1.0)
    delta = forward.effects["cliffs_delta"]["estimate"]
    assert -1.0 <= delta <= 1.0
    assert backward.effects["cliffs_delta"]["estimate"] == -delta
    swapped = backward.effects["prob_improvement"]
    assert (swapped["p_less"], swapped["p_greater"]) == (prob["p_greater"], prob["p_less"])
    assert swapped["p_tie"] == prob["p_tie"]


@settings(max_examples=30, deadline=None)
@given(_paired_mses(allow_invalid=True))
def test_property_compare_survives_divergence(pair):
    a, b = pair
    c = fs.compare(a, b, FAST)
    json.dumps(c.to_dict(), allow_nan=False)
    assert c.n_pairs == int(np.sum(np.isfinite(a) & np.isfinite(b)))
    assert c.n_dropped_a == int(np.sum(~np.isfinite(a)))
