"""Tests of the sweep's table, report and figures (fibjax.reports.sweep_table, sweep_report and
sweep_plots): synthetic MSEs in, files out.

References are hand-worked, or come from SciPy and NumPy called in the test (Holm from
``helpers.holm_step_down``), never from the code under test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.stats

from fibjax import stats
from fibjax.reports import sweep_plots, sweep_table
from fibjax.reports import sweep_report as sr
from fibjax.results import storage

from helpers import holm_step_down

FAST = stats.StatsConfig(n_resamples=200, seed=3)
BASE = dict(cell="gru", model="dot", hidden=8, window=6, scaling="log", learning_rate=0.01)


def _point(rng, shift=0.0, n=10, **settings):
    """A grid point whose attention MSEs are vanilla's times 10**shift, with seed noise."""
    shared = rng.normal(-3.0, 0.5, n)
    vanilla = 10.0 ** (shared + rng.normal(0.0, 0.1, n))
    attention = 10.0 ** (shared + shift + rng.normal(0.0, 0.1, n))
    return sweep_table.PointResult({**BASE, **settings}, np.arange(n), attention, vanilla)


def _grid(rng, windows=(6, 12)):
    """GRU with log scaling favours attention at every window; the simple cell favours vanilla
    at window 12; everything else has no effect."""
    points = []
    for cell in ("simple", "gru"):
        for window in windows:
            for scaling in ("minmax", "log"):
                shift = 0.0
                if cell == "gru" and scaling == "log":
                    shift = -1.0
                elif cell == "simple" and window == 12:
                    shift = 1.0
                points.append(_point(rng, shift, cell=cell, window=window, scaling=scaling))
    return points


def _same(a, b):
    """Equal rows, NaN equal to NaN."""
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], float) and math.isnan(a[key]):
            assert isinstance(b[key], float) and math.isnan(b[key]), key
        else:
            assert a[key] == b[key] and type(a[key]) is type(b[key]), key


# ------------------------------------------------------------------------ corrections


def test_holm_and_bh_hand_worked_in_shuffled_order():
    # Sorted p = 0.01, 0.02, 0.03, 0.04, 0.2, m = 5.
    # Holm: 5*0.01 = 0.05, 4*0.02 = 0.08, 3*0.03 = 0.09, 2*0.04 = 0.08 -> max 0.09, 1*0.2 = 0.2.
    # BH: 0.01*5/1 = 0.02*5/2 = 0.03*5/3 = 0.04*5/4 = 0.05, 0.2*5/5 = 0.2; running min from top.
    p = np.array([0.03, 0.2, 0.01, 0.04, 0.02])
    np.testing.assert_allclose(stats.holm(p), [0.09, 0.2, 0.05, 0.09, 0.08], rtol=1e-12)
    np.testing.assert_allclose(
        stats.benjamini_hochberg(p), [0.05, 0.2, 0.05, 0.05, 0.05], rtol=1e-12
    )


def test_holm_and_bh_against_references():
    p = np.random.default_rng(0).uniform(0.0, 0.2, 30) ** 2
    np.testing.assert_allclose(stats.holm(p), holm_step_down(p), rtol=1e-12)
    np.testing.assert_allclose(
        stats.benjamini_hochberg(p),
        scipy.stats.false_discovery_control(p, method="bh"),
        rtol=1e-12,
    )


def test_bh_keeps_nan_and_counts_it_in_m():
    # m = 3: 0.01 * 3/1 = 0.03, 0.02 * 3/2 = 0.03; with m = 2 they would be 0.02 and 0.02.
    q = stats.benjamini_hochberg([0.01, float("nan"), 0.02])
    assert math.isnan(q[1])
    np.testing.assert_allclose(q[[0, 2]], [0.03, 0.03], rtol=1e-12)
    assert stats.benjamini_hochberg([]).shape == (0,)
    with pytest.raises(ValueError, match="1-D"):
        stats.benjamini_hochberg([[0.1]])


# ------------------------------------------------------------------------- grid points


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(settings={k: v for k, v in BASE.items() if k != "window"}), "exactly the keys"),
        (dict(settings={**BASE, "hidden": 0}), "positive integer"),
        (dict(settings={**BASE, "learning_rate": float("nan")}), "positive finite"),
        (dict(settings={**BASE, "cell": ""}), "non-empty string"),
        (dict(attention_mse=[1e-3, 1e-3]), "one MSE per seed"),
        (dict(vanilla_mse=[1e-3, -1e-3, 1e-3]), "negative or infinite"),
        (dict(seeds=[0, 0, 1]), "distinct"),
    ],
)
def test_point_result_refuses_bad_input(change, message):
    fields = dict(settings=BASE, seeds=[0, 1, 2], attention_mse=[1e-3] * 3, vanilla_mse=[1e-3] * 3)
    with pytest.raises(ValueError, match=message):
        sweep_table.PointResult(**{**fields, **change})


def test_point_row_equals_compare():
    rng = np.random.default_rng(1)
    point = _point(rng, -0.3, n=12)
    point.attention_mse[2] = np.nan
    point.vanilla_mse[5] = np.nan
    row = sweep_table.point_row(point, FAST)
    c = stats.compare(point.attention_mse, point.vanilla_mse, FAST)
    ratio, share = c.paired["median_log10_ratio"], c.paired["prob_a_wins"]
    expected = {
        **BASE,
        "n_seeds": 12,
        "n_pairs": c.n_pairs,
        "attention_diverged": c.n_dropped_a,
        "vanilla_diverged": c.n_dropped_b,
        "attention_median_mse": 10.0 ** c.summary_a["median"],
        "vanilla_median_mse": 10.0 ** c.summary_b["median"],
        "median_log10_ratio": ratio["estimate"],
        "ratio_ci_low": ratio["ci"]["low"],
        "ratio_ci_high": ratio["ci"]["high"],
        "ratio_ci_method": ratio["ci"]["method"],
        "share_attention_lower": share["estimate"],
        "share_ci_low": share["ci"]["low"],
        "share_ci_high": share["ci"]["high"],
        "p_wilcoxon": c.paired["wilcoxon"]["pvalue"],
    }
    assert row == expected
    assert (row["n_pairs"], row["attention_diverged"], row["vanilla_diverged"]) == (10, 1, 1)
    # The median MSE, independently: log10 median of the 11 valid values.
    valid = point.attention_mse[np.isfinite(point.attention_mse)]
    assert row["attention_median_mse"] == pytest.approx(np.median(valid), rel=1e-12)


def test_decisions_come_from_holm_over_the_grid():
    rng = np.random.default_rng(2)
    points = [
        _point(rng, -1.0, window=6),
        _point(rng, 1.0, window=12),
        _point(rng, 0.0, window=24),
    ]
    rows = sweep_table.sweep_rows(points, FAST)
    p = np.array([row["p_wilcoxon"] for row in rows])
    assert p[0] == p[1] == 2 / 2**10  # every seed favours one model: exact, two-sided
    np.testing.assert_allclose([row["p_holm"] for row in rows], holm_step_down(p), rtol=1e-12)
    np.testing.assert_allclose(
        [row["q_bh"] for row in rows],
        scipy.stats.false_discovery_control(p, method="bh"),
        rtol=1e-12,
    )
    assert [row["decision"] for row in rows] == ["attention", "vanilla", "undecided"]


def test_holm_can_leave_a_raw_rejection_undecided():
    # 6 of 6 seeds favour attention at both points: raw p = 2 / 2**6 = 0.03125 < 0.05, but
    # Holm's smallest adjusted p over the two points is 2 * 0.03125 = 0.0625.
    base = np.arange(1.0, 7.0) * 1e-3
    points = [
        sweep_table.PointResult({**BASE, "window": w}, np.arange(6), base / 10, base)
        for w in (6, 12)
    ]
    rows = sweep_table.sweep_rows(points, FAST)
    assert [row["p_wilcoxon"] for row in rows] == [0.03125, 0.03125]
    assert [row["p_holm"] for row in rows] == [0.0625, 0.0625]
    assert {row["decision"] for row in rows} == {"undecided"}


def test_sweep_rows_refuses_repeated_settings():
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="same settings"):
        sweep_table.sweep_rows([_point(rng), _point(rng)], FAST)
    with pytest.raises(ValueError, match="no grid points"):
        sweep_table.sweep_rows([], FAST)


# -------------------------------------------------------------------------------- CSV


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(4)
    points = _grid(rng)
    points[0].attention_mse[:] = np.nan  # every seed diverged: NaN statistics, no CI method
    return sweep_table.sweep_rows(points, FAST)


def test_csv_round_trip(rows, tmp_path):
    path = tmp_path / "sweep.csv"
    sweep_table.write_sweep_csv(path, rows)
    header = path.read_text().splitlines()[0]
    assert header == ",".join(sweep_table.COLUMNS)
    back = sweep_table.read_sweep_csv(path)
    assert len(back) == len(rows)
    assert rows[0]["ratio_ci_method"] is None and math.isnan(rows[0]["p_wilcoxon"])
    for original, read in zip(rows, back, strict=True):
        _same(original, read)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda lines: lines[:1] + [lines[1].rsplit(",", 1)[0]] + lines[2:], "22 fields"),
        (lambda lines: [lines[0].replace("q_bh", "q")] + lines[1:], "expected columns"),
        (
            lambda lines: lines[:1] + [lines[1].replace("undecided", "maybe")] + lines[2:],
            "decision 'maybe'",
        ),
        (
            lambda lines: lines[:2] + [lines[2].replace(",8,", ",eight,", 1)] + lines[3:],
            "line 3: hidden = 'eight' is not an integer",
        ),
        (lambda lines: lines + [lines[1]], "repeats the settings"),
    ],
)
def test_damaged_csv_is_refused(rows, tmp_path, damage, message):
    path = tmp_path / "sweep.csv"
    sweep_table.write_sweep_csv(path, rows)
    path.write_text("\n".join(damage(path.read_text().splitlines())) + "\n")
    with pytest.raises(storage.ResultFileError, match=message) as error:
        sweep_table.read_sweep_csv(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_missing_csv_is_refused(tmp_path):
    with pytest.raises(storage.ResultFileError, match="missing"):
        sweep_table.read_sweep_csv(tmp_path / "sweep.csv")


# ---------------------------------------------------------------------- report, figures


def _write(out_dir, points, **kwargs):
    return sr.write_sweep_report(
        out_dir,
        points,
        alpha=0.05,
        stats_seed=3,
        rows_axis=kwargs.pop("rows_axis", "window"),
        cols_axis=kwargs.pop("cols_axis", "scaling"),
        description={"epochs": 2, "versions": {"jax": "test"}},
        code_text="fibjax under test",
        epochs=2,
        n_resamples=200,
        **kwargs,
    )


def test_write_sweep_report_writes_every_file_and_names_the_winners(tmp_path):
    summary = _write(tmp_path, _grid(np.random.default_rng(5)))
    names = {"sweep.csv", "summary.json", "report.md", *sr.FIGURES.values()}
    assert names <= {p.name for p in tmp_path.iterdir()}
    for file in sr.FIGURES.values():
        assert (tmp_path / file).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved == summary
    assert saved["description"] == {"epochs": 2, "versions": {"jax": "test"}}
    assert saved["decisions"] == {"attention": 2, "vanilla": 2, "undecided": 4}
    assert saved["statistics"]["family_size"] == 8
    report = (tmp_path / "report.md").read_text()
    attention = report.split("### Attention has the lower test MSE (2 grid points)")[1]
    assert attention.split("###")[0].strip() == "- cell gru, every window (6, 12), log scaling"
    vanilla = report.split("### Vanilla has the lower test MSE (2 grid points)")[1]
    expected = "- cell simple, window 12, every scaling (minmax, log)"
    assert vanilla.split("###")[0].strip() == expected
    assert "Holm's method over 8 grid points, familywise level α = 0.05" in report
    assert "Benjamini–Hochberg q-values also given" in report
    assert "Fixed across the grid: model=dot, hidden=8, learning_rate=0.01." in report


def test_a_figure_with_nothing_to_show_is_left_out_and_explained(tmp_path):
    _write(tmp_path, _grid(np.random.default_rng(6)))
    summary = _write(tmp_path, _grid(np.random.default_rng(6), windows=(6,)))
    assert "effect_by_window" not in summary["figures"]
    assert not (tmp_path / sr.FIGURES["effect_by_window"]).exists()  # the old one is gone
    report = (tmp_path / "report.md").read_text()
    assert "The effect-by-window figure is not drawn: the grid has one window (6)." in report


def test_a_failed_report_leaves_the_previous_files(tmp_path, monkeypatch):
    _write(tmp_path, _grid(np.random.default_rng(7)))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sweep_plots, "forest", broken)
    with pytest.raises(RuntimeError):
        _write(tmp_path, _grid(np.random.default_rng(8)))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize(
    "rows_axis, cols_axis, message",
    [("epochs", "window", "not an axis"), ("window", "window", "both 'window'")],
)
def test_heatmap_refuses_bad_axes(rows, tmp_path, rows_axis, cols_axis, message):
    with pytest.raises(ValueError, match=message):
        sweep_plots.effect_heatmap(
            rows, rows_axis=rows_axis, cols_axis=cols_axis, path=tmp_path / "h.png", alpha=0.05
        )
    with pytest.raises(ValueError, match=message):
        _write(tmp_path, [], rows_axis=rows_axis, cols_axis=cols_axis)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["effect_heatmap", "effect_by_window", "forest"])
def test_each_figure_is_written(rows, tmp_path, name):
    path = tmp_path / f"{name}.png"
    draw = getattr(sweep_plots, name)
    if name == "effect_heatmap":
        out = draw(rows, rows_axis="cell", cols_axis="window", path=path, alpha=0.05)
    else:
        out = draw(rows, path)
    assert out == path and path.stat().st_size > 1000


@pytest.mark.parametrize("n, text", [(1, "over 1 grid point,"), (2, "over 2 grid points,")])
def test_counts_agree_with_their_nouns(n, text):
    assert text in sr.correction_text(n, 0.05)


def test_a_point_where_every_seed_diverged_is_named_so(tmp_path):
    points = _grid(np.random.default_rng(7))
    first = points[0]
    points[0] = sweep_table.PointResult(
        first.settings, first.seeds, np.full_like(first.attention_mse, np.nan), first.vanilla_mse
    )
    _write(tmp_path, points)
    report = (tmp_path / "report.md").read_text()
    assert "1 could not be compared, every seed having diverged in one model or both" in report
    heading = "### Not compared (no seed where both models stayed finite) (1 grid point)"
    assert (
        report.split(heading)[1].split("##")[0].strip() == "- cell simple, window 6, minmax scaling"
    )
    assert "10 diverged seed results were left out" in report


def test_the_report_says_what_decides_a_point(tmp_path):
    # The decision follows the median paired log-ratio, which can disagree with the order of
    # the two models' own median MSEs; the report says which it uses.
    _write(tmp_path, _grid(np.random.default_rng(8)))
    report = " ".join((tmp_path / "report.md").read_text().split())
    assert (
        "for the model that the median over seeds of the paired log10(MSE attention / MSE" in report
    )
    assert "lower median" not in report


def test_all_zero_mses_have_a_median_of_zero():
    zeros = np.zeros(6)
    point = sweep_table.PointResult(BASE, np.arange(6), zeros, zeros)
    row = sweep_table.point_row(point, stats.StatsConfig(n_resamples=100))
    assert row["attention_median_mse"] == 0.0 and row["vanilla_median_mse"] == 0.0
