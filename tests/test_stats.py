"""Tests of fibjax.stats.

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
COVERAGE = fs.StatsConfig(n_resamples=1000)


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


# ----------------------------------------------------------------- hand-worked effects


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


# --------------------------------------------------------------------- summaries, power


def test_describe_sample_hand_case():
    # log10 values -3, -2, -1 (the NaN is dropped): mean -2, sd 1, quartiles -2.5 / -1.5
    # (linear interpolation), trim_mean(0.25) trims int(0.75) = 0 values -> -2.
    s = fs.describe_sample([1e-3, 1e-2, 1e-1, float("nan")], FAST)
    assert (s["n"], s["n_dropped"]) == (3, 1)
    assert s["mean"] == pytest.approx(-2.0)
    assert s["std"] == pytest.approx(1.0)
    assert s["median"] == pytest.approx(-2.0)
    assert (s["q25"], s["q75"], s["iqr"]) == pytest.approx((-2.5, -1.5, 1.0))
    assert s["iqm"] == pytest.approx(-2.0)
    assert s["geometric_mean_mse"] == pytest.approx(1e-2)
    assert s["mean_ci"]["low"] < -2.0 < s["mean_ci"]["high"]


def test_zero_mse_is_mapped_to_float64_tiny():
    s = fs.describe_sample([0.0, 1.0], FAST)
    assert s["mean"] == pytest.approx(np.log10(np.finfo(np.float64).tiny) / 2)
    assert any("exactly 0" in note for note in s["notes"])


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


# ------------------------------------------------------------- calibration (synthetic)


def test_bootstrap_intervals_cover_the_true_mean():
    rng = np.random.default_rng(6)
    true_mean, covered_mean, covered_median = -3.0, 0, 0
    for _ in range(200):
        # Normal on log10 scale: true mean == true median == -3.
        s = fs.describe_sample(10.0 ** rng.normal(true_mean, 0.5, 20), COVERAGE)
        covered_mean += s["mean_ci"]["low"] <= true_mean <= s["mean_ci"]["high"]
        covered_median += s["median_ci"]["low"] <= true_mean <= s["median_ci"]["high"]
    assert 0.88 <= covered_mean / 200 <= 0.99
    assert 0.88 <= covered_median / 200 <= 0.99


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


# ------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alpha", 0.0),
        ("alpha", 1.0),
        ("alpha", float("nan")),
        ("confidence", 1.5),
        ("power", -0.1),
        ("power", "0.8"),
        ("n_resamples", 99),
        ("n_resamples", 1000.0),
        ("seed", -1),
        ("seed", True),
    ],
)
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"StatsConfig.{field}="):
        fs.StatsConfig(**{field: value})


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match=r"\(3,\) and \(2,\)"):
        fs.compare([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        fs.compare([[1.0, 2.0]], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="shape"):
        fs.describe_sample(np.ones((2, 2)))


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


# ------------------------------------------------------------------ multiple comparisons


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
