"""One LSTM comparison of every attention form against the baseline: models, Holm, report.

Apart from tests/test_compare.py so that --dist loadfile can give its four compilations to the
other worker.
"""

import csv
import json

import pytest

from helpers import FIGURES, PNG, QUICK

# The LSTM: a cell other than the default, and its programs compile faster than the GRU's.
FAMILY = ["--cell", "lstm", "--models", "vanilla,additive,dot"]


@pytest.fixture(scope="module")
def family(tmp_path_factory):  # ~20 s on an idle 2-core machine: four programs to compile
    """One LSTM comparison of every pooling against the baseline, run in-process."""
    import contextlib
    import io

    from fibjax.cli.entry import main

    out = tmp_path_factory.mktemp("family") / "cmp"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        status = main(["compare", *FAMILY, *QUICK, "--no-cache", "--out", str(out)])
    assert status == 0
    return out, stdout.getvalue()


@pytest.mark.slow
def test_family_results_name_cell_hidden_and_every_model(family):
    out, _ = family
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    # The attention forms in the order given, the baseline last; every seed under each.
    order = ["additive", "dot", "vanilla"]
    assert [(r["model"], int(r["seed"])) for r in rows] == [(m, s) for m in order for s in range(3)]
    assert {(r["cell"], r["hidden"]) for r in rows} == {("lstm", "2")}
    assert json.loads((out / "run.json").read_text())["config"]["models"] == [
        "vanilla",
        "additive",
        "dot",
    ]


@pytest.mark.slow
def test_family_summary_has_one_holm_adjusted_comparison_per_attention_form(family):
    out, stdout = family
    summary = json.loads((out / "summary.json").read_text())
    comparisons = summary["comparisons"]
    assert list(comparisons) == ["additive", "dot"]
    raw = {k: c["paired"]["wilcoxon"]["pvalue"] for k, c in comparisons.items()}
    # Holm's step-down adjustment, computed here from the raw p-values.
    order = sorted(raw, key=raw.get)
    expected, running = {}, 0.0
    for rank, name in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * raw[name]))
        expected[name] = running
    for name, comparison in comparisons.items():
        assert comparison["names"] == {"a": name, "b": "vanilla"}
        adjustment = comparison["adjustment"]
        assert adjustment["method"] == "holm" and adjustment["family_size"] == 2
        assert adjustment["pvalue"] == pytest.approx(expected[name])
        assert summary["verdicts"][name] in summary["verdict"]
    assert summary["models"]["additive"] == "LSTM(2) → additive attention → Dense"
    for name in ("additive", "dot", "vanilla"):
        assert name in stdout


@pytest.mark.slow
def test_family_report_names_the_cell_every_form_and_the_correction(family):
    out, _ = family
    report = (out / "report.md").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert "LSTM(2)" in report and "SimpleRNN" not in report
    for name in ("additive", "dot"):
        assert f"### {name} vs vanilla" in report
        assert summary["verdicts"][name] in report
    assert "Holm-adjusted over 2 comparisons" in report
    assert "LSTM(2) → dot-product attention → Dense" in report
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == PNG, name
