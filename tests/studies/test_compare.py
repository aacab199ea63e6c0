"""The main experiment end to end: files, report rebuild, A/A mode, resume and bad folders."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fibjax.studies.compare import CompareConfig

from conftest import run_fibjax as fibjax
from conftest import run_in_process
from helpers import FIGURES, PNG, QUICK

FILES = ["run.json", "results.csv", "curves.npz", "summary.json", "report.md"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "cmp"
    cache = tmp_path_factory.mktemp("cache")
    done = fibjax("compare", *QUICK, "--out", out, cache=cache)
    assert done.returncode == 0, done.stderr
    return out, done, cache


def test_every_file_is_written(finished):
    out, done, _ = finished
    for name in FILES:
        assert (out / name).stat().st_size > 0, name
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == PNG, name
    assert "Report:" in done.stdout and "attention" in done.stdout
    assert not list(out.glob("*.tmp"))


def test_result_files_are_readable_as_plain_files_are(finished):
    # Written through temporary files, they still get 0o666 less the umask, as open() gives:
    # others can read a shared results folder.
    out, _, _ = finished
    mask = os.umask(0)
    os.umask(mask)
    for path in out.iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path.name


def test_results_csv_has_a_row_per_seed_and_model(finished):
    out, _, _ = finished
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "seed",
        "model",
        "cell",
        "hidden",
        "train_mse",
        "test_mse",
        "final_loss",
        "diverged",
        "diverged_epoch",
    ]
    assert [(int(r["seed"]), r["model"]) for r in rows] == [
        (s, m) for m in ("attention", "vanilla") for s in range(3)
    ]
    assert all(np.isfinite(float(r["test_mse"])) and r["diverged"] == "false" for r in rows)
    assert {(r["cell"], r["hidden"]) for r in rows} == {("simple", "2")}
    curves = np.load(out / "curves.npz")
    assert curves["attention/epoch_losses"].shape == (3, 2)


def test_summary_records_what_is_needed_to_rerun(finished):
    out, _, _ = finished
    summary = json.loads((out / "summary.json").read_text())
    config = summary["config"]
    assert config["seeds"] == [0, 1, 2] and config["epochs"] == 2
    assert config["data"]["window"] == 6
    (comparison,) = summary["comparisons"].values()  # the default: one comparison, unadjusted
    assert comparison["primary_test"] == "wilcoxon_signed_rank_log10_mse"
    assert comparison["adjustment"] is None
    env = summary["environment"]
    assert env["versions"]["jax"] and env["device"]["backend"] == "cpu"
    assert summary["verdict"] in (out / "report.md").read_text()


def test_report_rebuilds_the_same_statistics(finished, capsys):
    out, _, _ = finished
    before = json.loads((out / "summary.json").read_text())
    (out / "summary.json").unlink()
    (out / "test_mse.png").unlink()
    rebuilt = run_in_process(capsys, "report", out)
    assert rebuilt.returncode == 0, rebuilt.stderr
    after = json.loads((out / "summary.json").read_text())
    assert after["comparisons"] == before["comparisons"]
    assert after["verdict"] == before["verdict"]
    assert (out / "test_mse.png").read_bytes()[:8] == PNG


def test_caches_hold_the_training_programs(finished):
    # A host callback inside a program would keep JAX from caching it. Each model saves its
    # training program, and the two models one program of their initial weights
    # (fibjax.training.initial), each traced (fibjax.training.program_cache) and compiled.
    _, _, cache = finished
    assert len([p for p in cache.iterdir() if p.name.startswith("jit_saved_program")]) == 3
    assert len(list((cache / "programs").glob("*.jaxexport"))) == 3


def test_aa_mode_uses_disjoint_seeds(tmp_path, capsys):
    done = run_in_process(capsys, "compare", *QUICK, "--aa", "--no-cache", "--out", tmp_path / "aa")
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "aa" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    a = {int(r["seed"]) for r in rows if r["model"] == "vanilla-A"}
    b = {int(r["seed"]) for r in rows if r["model"] == "vanilla-B"}
    assert a == {0, 1, 2} and b == {3, 4, 5}
    assert "A/A" in (tmp_path / "aa" / "report.md").read_text()


def test_aa_config_rejects_overflowing_seeds():
    with pytest.raises(ValueError, match="seed"):
        CompareConfig(seeds=(2**32 - 1,), aa=True)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"alpha": 0.0}, "alpha"),
        ({"aa": "yes"}, "aa="),
        ({"stats_seed": -1}, "stats_seed"),
        ({"stats_seed": 1.5}, "stats_seed"),
        ({"epochs": 0}, "epochs"),
        ({"seeds": ()}, "seeds is empty"),
    ],
)
def test_compare_config_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        CompareConfig(**kwargs)


def test_refuses_a_folder_that_is_not_a_result(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    done = run_in_process(capsys, "compare", *QUICK, "--no-cache", "--out", tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "not a fibjax result" in done.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_refuses_to_overwrite_a_result(finished, capsys):
    out, _, _ = finished
    before = (out / "results.csv").read_bytes()
    done = run_in_process(capsys, "compare", *QUICK, "--no-cache", "--out", out)
    assert done.returncode == 2 and "--resume" in done.stderr
    assert (out / "results.csv").read_bytes() == before


@pytest.mark.parametrize(
    "damage",
    [
        lambda out: (out / "results.csv").write_text("seed,model\n1,2\n"),
        lambda out: (out / "results.csv").write_bytes((out / "results.csv").read_bytes()[:90]),
        lambda out: (out / "curves.npz").write_bytes(b"PK\x03\x04 broken"),
        lambda out: (out / "run.json").write_text("{not json"),
        lambda out: (out / "arm_vanilla.npz").unlink(),
    ],
    ids=["foreign", "truncated", "curves", "run", "arm"],
)
def test_report_on_damaged_files_gives_one_line(finished, tmp_path, damage, capsys):
    out = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(finished[0]), str(out)], check=True)
    damage(out)
    kept = {p.name: p.read_bytes() for p in out.iterdir()}
    done = run_in_process(capsys, "report", out)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == kept


def start_until_first_arm(out):
    """Starts a comparison in the background; returns once its first model is saved."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fibjax", "compare", *QUICK, "--out", str(out)],
        env=dict(os.environ, FIBJAX_CACHE_DIR="off"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not (out / "arm_attention.npz").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_results(finished, tmp_path, capsys):
    reference = (finished[0] / "results.csv").read_text()
    out = tmp_path / "killed"
    proc = start_until_first_arm(out)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert (out / "arm_attention.npz").exists()
    assert not (out / "summary.json").exists()  # killed before the end
    resumed = run_in_process(capsys, "compare", "--resume", out, "--no-cache")
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "results.csv").read_text() == reference


def test_plot_redraws_every_figure(finished, capsys):
    out, _, _ = finished
    for name in FIGURES:
        (out / name).unlink()
    done = run_in_process(capsys, "plot", out)
    assert done.returncode == 0, done.stderr
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == PNG


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_says_what_was_saved_and_how_to_resume(tmp_path, signum):
    # SIGTERM (kill, timeout, a cluster's scancel or preemption) stops a run as Ctrl-C does.
    out = tmp_path / "interrupted"
    proc = start_until_first_arm(out)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, stderr
    assert "saved in" in stderr and "attention" in stderr
    assert f"--resume {out}" in stderr
    assert "Traceback" not in stderr


def test_resume_with_a_damaged_arm_gives_one_line(finished, tmp_path, capsys):
    out = tmp_path / "damaged"
    subprocess.run(["cp", "-r", str(finished[0]), str(out)], check=True)
    arm = out / "arm_attention.npz"
    arm.write_bytes(arm.read_bytes()[:200])
    kept = arm.read_bytes()
    done = run_in_process(capsys, "compare", "--resume", out, "--no-cache")
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "arm_attention.npz" in done.stderr
    assert arm.read_bytes() == kept


@pytest.mark.parametrize(
    "args, message",
    [
        (["--models", "vanilla,gru"], "model 'gru' is unknown; choose from vanilla, attention"),
        (["--models", "attention,dot"], "must include vanilla"),
        (["--models", "vanilla"], "two or more different models"),
        (["--models", "dot,vanilla,dot"], "two or more different models"),
        (["--cell", "rnn"], "cell='rnn' is unknown"),
    ],
)
def test_bad_models_or_cell_give_one_line(capsys, tmp_path, args, message):
    done = run_in_process(capsys, "compare", *args, *QUICK, "--no-cache", "--out", tmp_path / "out")
    status, err = done.returncode, done.stderr
    assert status == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out").exists()  # refused before anything is written
