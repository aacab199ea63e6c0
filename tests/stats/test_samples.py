"""Tests of fibjax.stats.config and fibjax.stats.samples: the settings' and the inputs'
validation, the per-model summary and the coverage of its bootstrap intervals.

References are hand-worked (numbers derived in the comments) or come from SciPy / NumPy
called directly in the test, never from fibjax.stats itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from fibjax import stats as fs

# Few resamples keep the suite fast; the statistics under test do not depend on the count.
FAST = fs.StatsConfig(n_resamples=200)
COVERAGE = fs.StatsConfig(n_resamples=1000)


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


@pytest.mark.parametrize("values", [[0.0, 0.0, 0.0], [0.0, 1e-3, 1e-2]])
def test_a_zero_mse_makes_the_geometric_mean_zero(values):
    # Not 10 ** mean of the mapped logs, which printed as 2.23e-308 (or about 1e-100 here).
    assert fs.describe_sample(values, FAST)["geometric_mean_mse"] == 0.0


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
