"""Bad input, divergence, log scaling and properties of the windows."""

import csv
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fibjax.data import (
    FLOAT32_RESOLUTION,
    DataConfig,
    describe,
    fibonacci_terms,
    fibonacci_windows,
)

from conftest import run_in_process

QUICK = ["--epochs", "2", "--n-terms", "80", "--window", "6"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "0"], "--seeds=0"),
        (["--seed-list", "1,1"], "repeated"),
        (["--seed-list", "1,-2"], "seed -2"),
        (["--seed-list", "1,x"], "--seed-list='1,x'"),
        (["--alpha", "1.5"], "alpha=1.5"),
        (["--batch-size", "0"], "batch_size=0"),
        (["--hidden", "0"], "hidden=0"),
        (["--learning-rate", "-1"], "learning_rate=-1.0"),
        # A negative number in exponent form is the option's value, refused by its own check.
        (["--learning-rate", "-1e-3"], "learning_rate=-0.001"),
        (["--learning-rate", "1e-50"], "is 0.0 in float32"),
        (["--learning-rate", "1e300"], "is inf in float32"),
        (["--train-fraction", "1"], "train_fraction=1.0"),
        (["--n-terms", "7"], "n_terms=7"),
        (["--window", "0"], "window=0"),
        (["--n-terms", "1476"], "n_terms=1476"),
        (["--out", "/dev/null/x"], "cannot be written"),
        (["--resume", "/nonexistent/run"], "--resume"),
        (["--aa-model", "gru"], "aa_model='gru'"),
        (["--cache-dir", "/dev/null/cache"], "cache folder /dev/null/cache: cannot be created"),
    ],
)
def test_compare_rejects_bad_options_in_one_line(args, message, capsys, monkeypatch):
    # In-process: each is refused before any training, and a process of its own would only add
    # the second or so that importing JAX takes (tests/cli/test_cli.py runs the real command).
    monkeypatch.setenv("FIBJAX_CACHE_DIR", "off")  # as run_fibjax sets it
    done = run_in_process(capsys, "compare", *QUICK, *args)
    status, err = done.returncode, done.stderr
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


def test_report_of_a_missing_folder(tmp_path, capsys):
    done = run_in_process(capsys, "report", tmp_path / "nothing")
    assert done.returncode == 2 and "no such folder" in done.stderr


def test_divergence_is_dropped_and_reported(tmp_path):
    # At this learning rate Adam pushes some seeds' weights past float32's range (see
    # tests/training/test_program.py): seeds 1 and 15 of both models, and a third of attention's.
    from fibjax.cli.entry import main  # in-process: nothing here needs a process of its own

    out = tmp_path / "diverged"
    args = ["compare", *QUICK, "--seeds", "16", "--learning-rate", "1e38", "--no-cache"]
    assert main([*args, "--out", str(out)]) == 0
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    diverged = [(r["model"], int(r["seed"])) for r in rows if r["diverged"] == "true"]
    assert ("vanilla", 1) in diverged and ("attention", 1) in diverged
    assert all(int(r["diverged_epoch"]) >= 1 for r in rows if r["diverged"] == "true")
    (stats,) = json.loads((out / "summary.json").read_text())["comparisons"].values()
    n_vanilla = sum(1 for m, _ in diverged if m == "vanilla")
    n_attention = len(diverged) - n_vanilla
    assert stats["n_dropped"] == {"a": n_attention, "b": n_vanilla}
    assert stats["summary"]["b"]["n"] == 16 - n_vanilla
    report = (out / "report.md").read_text()
    assert f"{len(diverged)} diverged seed result(s) were left out" in report
    assert not re.search(r"\bnan\b", report, re.IGNORECASE)  # no silent NaN in a table


def test_log_scaling_gives_every_window_signal():
    data = fibonacci_windows(scaling="log")
    targets = np.concatenate([data.train_y, data.test_y])
    order = np.argsort(np.concatenate([data.train_index, data.test_index]))
    in_sequence = targets[order].astype(np.float32)
    assert np.all(np.diff(in_sequence) > 0)  # every target distinct from its neighbour's
    info = describe(data)
    assert info["train_above_resolution"] == data.train_y.size
    assert info["test_above_resolution"] == data.test_y.size
    assert targets.min() > FLOAT32_RESOLUTION


def test_log_scaling_reaches_past_float64():
    data = fibonacci_windows(n_terms=3000, scaling="log")
    assert np.all(np.isfinite(data.train_x))
    assert data.train_x.shape == (2086, 20, 1)  # int(0.7 * 2980)
    with pytest.raises(ValueError, match="n_terms=3000"):
        DataConfig(n_terms=3000)


@pytest.mark.parametrize("scaling", ["minmax", "log"])
def test_inverse_scaling_recovers_fibonacci_numbers(scaling):
    data = fibonacci_windows(scaling=scaling)
    truth = fibonacci_terms(1200)[data.test_index]
    got = data.to_fibonacci(data.test_y)
    np.testing.assert_allclose(got, truth, rtol=1e-10)
    if scaling == "minmax":
        exact = truth < 2**53  # integers float64 holds exactly come back exactly
        assert np.array_equal(np.round(got[exact]), truth[exact])


def test_describe_counts_match_a_direct_computation():
    data = fibonacci_windows()
    info = describe(data, test_predictions=np.zeros(data.test_y.size))
    assert (info["train_above_resolution"], info["test_above_resolution"]) == (26, 8)
    errors = data.test_y**2
    signal = data.test_y > np.finfo(np.float32).eps
    assert info["test_mse_share_above_resolution"] == pytest.approx(
        errors[signal].sum() / errors.sum()
    )
    np.testing.assert_allclose(info["test_mse_share"].sum(), 1.0)


@settings(max_examples=25, deadline=None)
@given(
    n_terms=st.integers(3, 400),
    window=st.integers(1, 40),
    fraction=st.floats(0.05, 0.95),
    scaling=st.sampled_from(["minmax", "log"]),
)
def test_windows_properties(n_terms, window, fraction, scaling):
    try:
        data = fibonacci_windows(n_terms, window, fraction, scaling=scaling)
    except ValueError as error:
        assert any(name in str(error) for name in ("n_terms", "train_fraction"))
        return
    n_windows = n_terms - window
    assert data.train_x.shape[0] + data.test_x.shape[0] == n_windows
    assert data.train_x.shape[1:] == (window, 1)
    index = np.concatenate([data.train_index, data.test_index])
    assert sorted(index.tolist()) == list(range(window, n_terms))
    # Values stay in [0, 1] (up to the scaler's rounding: the notebook's own max is 1 + 2e-16),
    # and as the sequence grows, each window's last term is at most its target.
    x, y = data.train_x, data.train_y
    assert np.all((x >= 0) & (x <= 1 + 1e-12)) and np.all((y >= 0) & (y <= 1 + 1e-12))
    assert np.all(x[:, -1, 0] <= y)


def test_a_cache_folder_that_cannot_be_written_is_left_out_in_one_line(
    tmp_path, capsys, monkeypatch
):
    # As root every folder is writable, so the write check is made to fail as a read-only
    # folder's would; the run goes on without the cache, with one line instead of JAX's
    # warning for every program.
    from fibjax.cli.entry import main
    from fibjax.results import storage

    def read_only(folder):
        raise PermissionError(13, "Permission denied", str(folder))

    monkeypatch.setattr(storage, "check_writable", read_only)
    cache = tmp_path / "cache"
    cache.mkdir()
    capsys.readouterr()
    args = ["train", "--epochs", "1", "--n-terms", "60", "--window", "6", "--cache-dir", cache]
    assert main([str(a) for a in args]) == 0
    err = capsys.readouterr().err
    line = f"fibjax: cache folder {cache} cannot be written (Permission denied); going on"
    assert err.count("cache folder") == 1 and line in err and "Warning" not in err
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize(
    "command, holds, message",
    [
        (
            "sweep",
            {"run.json": "{}"},
            "holds a fibjax comparison, not a sweep; resume it with fibjax compare --resume",
        ),
        (
            "compare",
            {"sweep.json": "{}"},
            "holds a fibjax sweep, not a comparison; resume it with fibjax sweep --resume",
        ),
        ("compare", {"notes.txt": "mine"}, "is not a fibjax comparison; give a comparison's"),
        ("sweep", {"notes.txt": "mine"}, "is not a fibjax sweep; give a sweep's"),
        ("compare", {}, "start it again with fibjax compare --out"),
        ("sweep", {}, "start it again with fibjax sweep --out"),
    ],
)
def test_resume_of_a_folder_it_cannot_resume_says_what_to_do(
    command, holds, message, tmp_path, capsys
):
    # The advice must be one that works: never "start again with --out DIR" for a folder that
    # --out would refuse because it holds something.
    from fibjax.cli.entry import main

    for name, text in holds.items():
        (tmp_path / name).write_text(text)
    capsys.readouterr()
    assert main([command, "--resume", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


@pytest.mark.parametrize(
    "command",
    [
        ["compare", "--scaling", "log", "--n-terms", "100000000", "--seeds", "2"],
        ["sweep", "--scaling", "log", "--n-terms", "10000000", "--seeds", "2", "--epochs", "1"],
        ["compare", "--scaling", "log", "--n-terms", "3000000", "--window", "2000", "--seeds", "2"],
    ],
)
def test_data_that_cannot_fit_is_refused_before_it_is_built(command, monkeypatch, tmp_path, capsys):
    # The estimate counts the data and what each seed holds per window (measured: 3.1 GiB at a
    # million terms, where it had said 4.6 MiB); the data is never built.
    from fibjax import data as data_lib
    from fibjax.cli import entry
    from fibjax.training import memory

    monkeypatch.setattr(memory, "memory_available", lambda device: 16 * 2**30)
    monkeypatch.setattr(data_lib, "_scaled_sequence", lambda config: pytest.fail("data built"))
    assert entry.main([*command, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fibjax: error: training") and "training windows" in err
    assert "GiB, more than the 16 GiB" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_the_estimate_grows_with_the_data():
    from fibjax.training.config import TrainConfig
    from fibjax.training.memory import memory_estimate

    config = TrainConfig("attention", epochs=1)
    sizes = [
        memory_estimate(config, DataConfig(n_terms=n, scaling="log"), 64) for n in (10**5, 10**6)
    ]
    # Measured on 2 CPU devices (64 seeds at once, padding included): 0.93 and 3.6 GiB of peak
    # memory, of which about 0.6 GiB is the process itself (benchmarks/NOTES.md).
    assert 0.2 * 2**30 < sizes[0] < 0.4 * 2**30
    assert 2.5 * 2**30 < sizes[1] < 3.5 * 2**30


def test_a_large_data_set_is_said_before_it_is_built(monkeypatch, tmp_path, capsys):
    from fibjax.cli import entry, options

    monkeypatch.setattr(options, "LARGE_DATA", 100)
    taken = tmp_path / "taken"  # refused once the data is said: nothing trains in this test
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    args = ["compare", "--seeds", "2", *QUICK, "--out", str(taken)]
    assert entry.main(args) == 2
    err = capsys.readouterr().err
    assert "building 74 windows of 6 terms ..." in err and "is not empty" in err
