"""Sweeps: the grid, compiled-program reuse, saving, resuming, shards and their merge."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from fibjax.cli import entry
from fibjax.reports.sweep_report import build_report
from fibjax.reports.sweep_table import read_sweep_csv
from fibjax.results import provenance
from fibjax.studies import sweep, sweep_results
from fibjax.studies.sweep_grid import SweepConfig, shard_arms

from conftest import hooked_pythonpath

# Two scalings × two learning rates of one attention form: 4 grid points, 4 arms, 2 programs.
GRID = ["--cell", "simple", "--models", "dot", "--window", "6", "--n-terms", "60"]
GRID += ["--scaling", "minmax,log", "--learning-rate", "1e-3,1e-2", "--seeds", "4", "--epochs", "2"]
SMALL = dict(
    cells=("simple",), models=("dot",), windows=(6,), n_terms=60, seeds=(0, 1, 2, 3), epochs=2
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    # One compilation cache for the module: the sweeps below compile the same programs.
    return ["--cache-dir", str(tmp_path_factory.mktemp("cache"))]


@pytest.fixture(scope="module")
def whole_and_work(tmp_path_factory, cache):
    """The GRID sweep through the library (the shards below go through the command line)."""
    out = tmp_path_factory.mktemp("sweeps") / "whole"
    config = SweepConfig(**SMALL, scalings=("minmax", "log"), learning_rates=(1e-3, 1e-2))
    sweep.prepare_out_dir(out, config, {})
    done = sweep.SweepProgress()
    # The same traced programs as the command line with --cache-dir (its programs/ folder).
    sweep.run_sweep(out, done=done, program_cache=Path(cache[1]) / "programs")
    build_report(out)
    return out, done


@pytest.fixture(scope="module")
def whole(whole_and_work):
    return whole_and_work[0]


def _arrays(folder):
    config, _, arms = sweep_results.load_all(folder)
    return {name: {k: v for k, v in arm.items() if k != "train_s"} for name, arm in arms.items()}


def _assert_same_arms(a, b):
    arms_a, arms_b = _arrays(a), _arrays(b)
    assert sorted(arms_a) == sorted(arms_b)
    for name in arms_a:
        for key in arms_a[name]:
            if key == "provenance":
                continue
            np.testing.assert_array_equal(arms_a[name][key], arms_b[name][key], err_msg=key)


def test_a_small_sweep_writes_every_output(whole, capsys):
    for name in ("sweep.json", "sweep.csv", "summary.json", "report.md"):
        assert (whole / name).is_file(), name
    rows = read_sweep_csv(whole / "sweep.csv")
    assert [(r["scaling"], r["learning_rate"]) for r in rows] == [
        ("minmax", 1e-3),
        ("minmax", 1e-2),
        ("log", 1e-3),
        ("log", 1e-2),
    ]
    assert len(list(whole.glob("arm_*.npz"))) == 4
    summary = json.loads((whole / "summary.json").read_text())
    assert summary["description"]["n_points"] == 4
    assert "Holm" in (whole / "report.md").read_text()


def test_the_report_is_rebuilt_from_the_saved_arms(whole, capsys):
    before = (whole / "sweep.csv").read_text()
    (whole / "sweep.csv").unlink()
    assert entry.main(["report", str(whole)]) == 0
    assert (whole / "sweep.csv").read_text() == before
    out = capsys.readouterr().out
    assert out.startswith("4 grid points: attention lower in") and "Holm over 4 grid points" in out


def test_a_grid_point_equals_compare_alone(whole, tmp_path, cache):
    out = tmp_path / "compare"
    args = ["compare", "--cell", "simple", "--models", "vanilla,dot", "--window", "6"]
    args += ["--n-terms", "60", "--scaling", "log", "--learning-rate", "1e-2", "--seeds", "4"]
    assert entry.main([*args, "--epochs", "2", *cache, "--out", str(out)]) == 0
    alone = json.loads((out / "summary.json").read_text())["comparisons"]["dot"]
    (row,) = [
        r
        for r in read_sweep_csv(whole / "sweep.csv")
        if r["scaling"] == "log" and r["learning_rate"] == 1e-2
    ]
    paired = alone["paired"]
    assert row["p_wilcoxon"] == paired["wilcoxon"]["pvalue"]
    assert row["median_log10_ratio"] == paired["median_log10_ratio"]["estimate"]
    assert row["ratio_ci_low"] == paired["median_log10_ratio"]["ci"]["low"]
    assert row["share_attention_lower"] == paired["prob_a_wins"]["estimate"]


def test_scalings_and_learning_rates_share_one_program_a_model(whole_and_work):
    _, done = whole_and_work
    assert (done.programs, len(done.saved)) == (2, 4)


def test_shards_merged_equal_the_whole_sweep(whole, tmp_path, cache, capsys):
    parts = [tmp_path / f"part{k}" for k in (1, 2)]
    for k, part in enumerate(parts, start=1):
        assert entry.main(["sweep", *GRID, *cache, "--shard", f"{k}/2", "--out", str(part)]) == 0
    assert entry.main(["merge", str(tmp_path / "merged"), *map(str, parts)]) == 0
    _assert_same_arms(tmp_path / "merged", whole)
    assert (tmp_path / "merged" / "sweep.csv").read_text() == (whole / "sweep.csv").read_text()
    # Folders that share arms merge when the shared arms are equal: a shard given twice, or a
    # shard beside the whole sweep.
    for name, folders in {"twice": [parts[0], *parts], "overlap": [whole, parts[1]]}.items():
        assert entry.main(["merge", str(tmp_path / name), *map(str, folders)]) == 0
        assert (tmp_path / name / "sweep.csv").read_text() == (whole / "sweep.csv").read_text()
    # ... and are refused, by folder and arm, when they differ.
    changed = tmp_path / "changed"
    shutil.copytree(parts[0], changed)
    arm = sorted(changed.glob("arm_*.npz"))[0]
    arrays = dict(np.load(arm))
    arrays["test_mse"] = arrays["test_mse"] * 2
    np.savez(arm, **arrays)
    capsys.readouterr()
    assert entry.main(["merge", *map(str, [tmp_path / "no", changed, *parts])]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{parts[0]}: {arm.name} differs from the same arm in {changed}" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "no").exists()
    # The merged folder is named as such, not as an option merge does not have.
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    assert entry.main(["merge", str(tmp_path / "full"), *map(str, parts)]) == 2
    err = capsys.readouterr().err
    assert f"the merged folder {tmp_path / 'full'}: exists, is not empty" in err
    assert "--out" not in err and (tmp_path / "full" / "notes.txt").read_text() == "mine"
    # The merged record keeps the training's environment, the merge's apart.
    merged = json.loads((tmp_path / "merged" / "sweep.json").read_text())
    first = json.loads((parts[0] / "sweep.json").read_text())
    assert merged["environment"] == first["environment"] and "command" in merged["merged_by"]


def test_a_merge_stopped_half_way_leaves_no_folder(whole, tmp_path, monkeypatch):
    # Stopped while it copies arms (Ctrl-C here; a kill leaves its hidden folder, which the
    # next merge removes): the merged folder is not there at all, rather than half there.
    copies, real_copy = [], shutil.copyfile

    def copy_then_stop(src, dst):
        if copies:
            raise KeyboardInterrupt
        copies.append(real_copy(src, dst))

    monkeypatch.setattr(sweep_results.shutil, "copyfile", copy_then_stop)
    with pytest.raises(KeyboardInterrupt):
        sweep_results.merge(tmp_path / "merged", [whole], {})
    assert [p.name for p in tmp_path.iterdir()] == []
    monkeypatch.undo()
    dead = tmp_path / f".merged.{dead_pid()}.0123abcd.tmp"  # a killed merge's folder
    dead.mkdir()
    sweep_results.merge(tmp_path / "merged", [whole], {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged"]
    assert (tmp_path / "merged" / "sweep.csv").exists() is False  # the report comes after
    assert len(list((tmp_path / "merged").glob("arm_*.npz"))) == 4


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 40])
def test_shards_are_disjoint_and_cover_the_grid(n):
    config = SweepConfig(cells=("simple", "gru"), hiddens=(2, 4), seeds=(0,))
    parts = [shard_arms(config, (k, n)) for k in range(1, n + 1)]
    together = [arm for part in parts for arm in part]
    assert together == config.arms()  # disjoint, complete, and in order
    assert parts == [shard_arms(config, (k, n)) for k in range(1, n + 1)]  # deterministic


def test_merge_refuses_shards_of_different_sweeps(tmp_path, cache, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert entry.main(["sweep", *GRID, *cache, "--shard", "1/2", "--out", str(a)]) == 0
    sweep.prepare_out_dir(b, SweepConfig(**{**SMALL, "epochs": 3}), {}, shard=(2, 2))
    capsys.readouterr()
    assert entry.main(["merge", str(tmp_path / "m"), str(a), str(b)]) == 2
    err = capsys.readouterr().err.strip()
    assert "another sweep" in err and "epochs" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m").exists()
    # The other shard of the same sweep is missing: merge names it.
    assert entry.main(["merge", str(tmp_path / "m"), str(a)]) == 2
    assert "shard(s) 2/2" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option, message",
    [
        (["--models", "vanilla,dot"], "baseline"),
        (["--window", "6,6"], "twice"),
        (["--hidden", "2,x"], "integers"),
        (["--cell", "elman"], "elman"),
        (["--rows", "window", "--cols", "window"], "different"),
        (["--window", "70"], "n_terms"),
        (["--shard", "3/2"], "shard"),
        (["--shard", "1/99999999999999999999"], "at most 1,000,000"),
        (["--shard", "1/2/3"], "K/N"),
        # Two names for one float32: one grid point twice, and a family of Holm one too large.
        (["--learning-rate", "0.001,0.0010000000001"], "equal in float32"),
        (["--learning-rate", "-1e-3,1e-3"], "learning_rate=-0.001"),
        (["--seeds", "4294967297"], "--seeds=4294967297"),
    ],
)
def test_bad_options_give_one_line(option, message, tmp_path, capsys):
    assert entry.main(["sweep", *GRID, *option, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_seeds_that_cannot_fit_are_refused_from_their_count(tmp_path, capsys):
    # 2**32 seeds: said at once, then refused in one line before the seeds are built (building
    # them had ended in a MemoryError).
    assert entry.main(["sweep", *GRID, "--seeds", str(2**32), "--out", str(tmp_path / "x")]) == 2
    first, *_, last = capsys.readouterr().err.strip().splitlines()
    assert first.startswith("preparing a sweep of 4294967296 seeds")
    assert last.startswith("fibjax: error: training") and "GiB" in last
    assert not (tmp_path / "x").exists()


def test_resume_refuses_a_changed_option(whole, capsys):
    assert entry.main(["sweep", "--resume", str(whole), "--epochs", "5"]) == 2
    assert "--epochs 5 differs" in capsys.readouterr().err
    assert entry.main(["sweep", "--resume", str(whole), "--seeds", "5"]) == 2
    assert "--seeds (5 seeds given) differs from the saved value" in capsys.readouterr().err
    assert entry.main(["sweep", "--resume", str(whole), "--epochs", "2", "--no-cache"]) == 0


@pytest.mark.slow
def test_sigkill_then_resume_trains_only_what_is_missing(whole, tmp_path, cache):
    out = tmp_path / "killed"
    # As many devices as this process has: an attention model's last bits can depend on how
    # many seeds a device trains at once (benchmarks/NOTES.md).
    devices = ["--cpu-devices", str(len(jax.devices()))]
    command = [sys.executable, "-m", "fibjax", "sweep", *GRID, *cache, *devices, "--out", str(out)]
    # The arms train in milliseconds, and the next program compiles while they do: the killed
    # process pauses after each saved arm, so that it is killed between two.
    path = hooked_pythonpath(
        tmp_path / "hook",
        "import time\n"
        "from fibjax.results import storage\n"
        "write = storage.write_npz\n"
        "def slow(*args, **kwargs):\n"
        "    write(*args, **kwargs)\n"
        "    time.sleep(30)\n"
        "storage.write_npz = slow\n",
    )
    process = subprocess.Popen(
        command,
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=path),
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("arm_*.npz")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    saved = {p.name: p.stat().st_mtime_ns for p in out.glob("arm_*.npz")}
    assert len(saved) == 1
    assert entry.main(["sweep", "--resume", str(out), *cache]) == 0
    assert {name: (out / name).stat().st_mtime_ns for name in saved} == saved
    _assert_same_arms(out, whole)
    assert (out / "sweep.csv").read_text() == (whole / "sweep.csv").read_text()


def test_ctrl_c_says_what_was_saved_and_resume_finishes(
    whole, tmp_path, cache, monkeypatch, capsys
):
    out = tmp_path / "stopped"
    train_arm, calls = sweep.train_arm, []

    def stop_at_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return train_arm(*args, **kwargs)

    monkeypatch.setattr(sweep, "train_arm", stop_at_the_second)
    assert entry.main(["sweep", *GRID, *cache, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "saved in" in err and "simple-dot-h2-w6-minmax" in err
    assert f"fibjax sweep --resume {out}" in err
    monkeypatch.setattr(sweep, "train_arm", train_arm)
    assert entry.main(["sweep", "--resume", str(out), *cache]) == 0
    _assert_same_arms(out, whole)


def test_a_damaged_arm_gives_one_line(whole, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(whole, copy)
    (copy / "arm_simple-dot-h2-w6-log.npz").write_bytes(b"not an npz")
    before = (copy / "report.md").read_text()
    assert entry.main(["report", str(copy)]) == 2
    err = capsys.readouterr().err.strip()
    assert "arm_simple-dot-h2-w6-log.npz" in err and len(err.splitlines()) == 1
    assert (copy / "report.md").read_text() == before  # the previous report is kept
    assert entry.main(["sweep", "--resume", str(copy)]) == 2
    assert "arm_simple-dot-h2-w6-log.npz" in capsys.readouterr().err


def _edit_record(folder, **fields):
    path = folder / "sweep.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


def _edit_arm(folder, **arrays):
    path = folder / "arm_simple-dot-h2-w6-log.npz"
    np.savez(path, **{**dict(np.load(path)), **arrays})


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: _edit_record(f, code_changes=5), "code_changes"),
        (lambda f: _edit_record(f, code_changes=["x"]), "code_changes"),
        (lambda f: _edit_record(f, shard="1/2"), "shard '1/2' must be null or [K, N]"),
        (lambda f: _edit_record(f, shard=[1]), "shard [1]"),
        (lambda f: _edit_record(f, shard=[3, 2]), "K must be from 1 to N"),
        (lambda f: _edit_arm(f, test_mse=np.full((2, 4), np.inf)), "test_mse holds values"),
        (lambda f: _edit_arm(f, train_mse=-np.ones((2, 4))), "train_mse holds values"),
        (lambda f: _edit_arm(f, train_s=np.array("an hour")), "train_s must be a number"),
        (lambda f: _edit_arm(f, diverged_epoch=-np.ones((2, 4), np.int32)), "diverged_epoch"),
    ],
)
def test_damaged_sweep_files_give_one_line(whole, tmp_path, capsys, damage, message):
    copy = tmp_path / "copy"
    shutil.copytree(whole, copy)
    damage(copy)
    capsys.readouterr()
    assert entry.main(["report", str(copy)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def _arm_bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.glob("arm_*.npz"))}


def test_a_finished_sweep_is_analysed_again_without_training(whole, tmp_path, capsys):
    # --alpha, --rows and --cols change the report, not the arms: `report` applies them to the
    # saved arms and records them in sweep.json.
    copy = tmp_path / "copy"
    shutil.copytree(whole, copy)
    arms = _arm_bytes(copy)
    args = ["report", str(copy), "--alpha", "0.2", "--rows", "scaling", "--cols", "learning_rate"]
    assert entry.main(args) == 0
    assert _arm_bytes(copy) == arms
    saved = json.loads((copy / "sweep.json").read_text())["config"]
    assert (saved["alpha"], saved["rows"], saved["cols"]) == (0.2, "scaling", "learning_rate")
    assert "α = 0.2" in (copy / "report.md").read_text()
    summary = json.loads((copy / "summary.json").read_text())
    assert summary["statistics"]["alpha"] == summary["description"]["config"]["alpha"] == 0.2
    # Resumed with other analysis settings, nothing trains and the report takes them.
    capsys.readouterr()
    assert entry.main(["sweep", "--resume", str(copy), "--alpha", "0.01", "--cols", "cell"]) == 0
    assert _arm_bytes(copy) == arms
    saved = json.loads((copy / "sweep.json").read_text())["config"]
    assert (saved["alpha"], saved["rows"], saved["cols"]) == (0.01, "scaling", "cell")


@pytest.mark.parametrize(
    "options, message",
    [
        (["--alpha", "2"], "alpha"),
        (["--rows", "colour"], "is not an axis"),
        (["--rows", "window"], "both 'window'"),
    ],
)
def test_a_reanalysis_with_bad_settings_changes_nothing(whole, options, message, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(whole, copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    capsys.readouterr()
    assert entry.main(["report", str(copy), *options]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before


def test_shards_that_differ_only_in_their_analysis_merge(whole, tmp_path, cache, capsys):
    parts = [tmp_path / f"part{k}" for k in (1, 2)]
    axes = [["--rows", "scaling", "--alpha", "0.1"], []]
    for k, (part, options) in enumerate(zip(parts, axes, strict=True), start=1):
        args = ["sweep", *GRID, *cache, *options, "--shard", f"{k}/2", "--out", str(part)]
        assert entry.main(args) == 0
    assert entry.main(["merge", str(tmp_path / "merged"), *map(str, parts)]) == 0
    _assert_same_arms(tmp_path / "merged", whole)
    merged = json.loads((tmp_path / "merged" / "sweep.json").read_text())["config"]
    assert (merged["rows"], merged["alpha"]) == ("scaling", 0.1)  # the first folder's


def test_arms_saved_with_their_analysis_settings_still_load(whole, tmp_path):
    # Arms saved before the analysis settings left the provenance carry them; they still load.
    copy = tmp_path / "copy"
    shutil.copytree(whole, copy)
    config, record = sweep.load_sweep(copy)
    for arm in config.arms():
        path = sweep.arm_path(copy, arm)
        arrays = dict(np.load(path))
        found = provenance.from_array(arrays["provenance"], str(path))
        found["config"]["sweep"].update({"alpha": 0.05, "stats_seed": 0, "rows": "x", "cols": "y"})
        arrays["provenance"] = provenance.to_array(found)
        np.savez(path, **arrays)
    assert len(sweep_results.load_all(copy)[2]) == len(config.arms())
