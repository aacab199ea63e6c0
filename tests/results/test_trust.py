"""Results that cannot lie: provenance, refusals before any work, and hostile input (issue 11)."""

import csv
import errno
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from fibjax.data import DataConfig
from fibjax.studies.compare import CompareConfig
from fibjax.training.config import TrainConfig, check_seeds

from conftest import run_in_process


def test_200000_seeds_are_checked_in_well_under_a_second():
    seeds = list(range(200_000))
    start = time.perf_counter()
    assert check_seeds(seeds) == tuple(seeds)
    CompareConfig(seeds=tuple(seeds), aa=True)
    assert time.perf_counter() - start < 1.0


def test_repeated_seeds_are_named_among_many():
    with pytest.raises(ValueError, match=r"repeated: \[7, 9\]"):
        check_seeds([*range(100_000), 7, 9])


def test_numpy_numbers_are_accepted_and_stored_as_python_numbers():
    config = CompareConfig(
        seeds=tuple(np.arange(3)),
        data=DataConfig(n_terms=np.int64(80), window=np.int32(6), train_fraction=np.float32(0.5)),
        hidden=np.int64(3),
        epochs=np.int32(2),
        learning_rate=np.float32(0.1),
        alpha=np.float32(0.05),
        stats_seed=np.uint8(4),
    )
    record = config.to_dict()
    assert record["learning_rate"] == pytest.approx(0.1) and type(record["learning_rate"]) is float
    assert type(record["hidden"]) is int and type(record["data"]["n_terms"]) is int
    assert type(record["alpha"]) is float and type(record["stats_seed"]) is int
    assert config == CompareConfig(**{**record, "data": config.data, "seeds": config.seeds})
    assert TrainConfig("vanilla", learning_rate=np.float64(0.01)).learning_rate == 0.01


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 3_000_000_000}, "epochs=3000000000 is too large"),
        ({"hidden": 2**40}, "hidden=1099511627776 is too large"),
        ({"learning_rate": np.float32("nan")}, "learning_rate=.*nan"),
    ],
)
def test_numbers_too_large_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig("vanilla", **kwargs)


# --- Provenance and refusals, through the command line in-process --------------------------

TINY = ["--seeds", "2", "--epochs", "2", "--n-terms", "80", "--window", "6", "--no-cache"]
REPORT_FILES = ("results.csv", "curves.npz", "summary.json", "report.md")


def fibjax(capsys, *args):
    """Runs ``fibjax ARGS`` in-process; returns ``(status, stderr)``."""
    done = run_in_process(capsys, *args)
    return done.returncode, done.stderr


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from fibjax.cli.entry import main

    out = tmp_path_factory.mktemp("trust") / "run"
    assert main(["compare", *TINY, "--out", str(out)]) == 0
    return out


@pytest.fixture
def partial(finished, tmp_path):
    """A copy of the finished run as an interruption after the first arm leaves it."""
    out = tmp_path / "partial"
    shutil.copytree(finished, out)
    for name in ("arm_vanilla.npz", *REPORT_FILES):
        (out / name).unlink()
    for png in out.glob("*.png"):
        png.unlink()
    return out


def edit_run_json(out, path, value):
    record = json.loads((out / "run.json").read_text())
    target = record["config"]
    *parents, last = path.split(".")
    for key in parents:
        target = target[key]
    target[last] = value
    (out / "run.json").write_text(json.dumps(record))


@pytest.mark.parametrize(
    "field, value",
    [
        ("hidden", 3),
        ("epochs", 3),
        ("batch_size", 2),
        ("learning_rate", 0.01),
        ("optimizer", "adam"),
        ("aa_model", "attention"),
        ("aa", True),
        ("cell", "gru"),
        ("models", ["attention", "dot", "vanilla"]),
        ("seeds", [0, 5]),
        ("data.n_terms", 81),
        ("data.window", 5),
        ("data.train_fraction", 0.6),
        ("data.split_seed", 14),
        ("data.scaling", "log"),
    ],
)
def test_resume_refuses_a_run_json_edited_after_an_arm_was_saved(partial, capsys, field, value):
    edit_run_json(partial, field, value)
    status, err = fibjax(capsys, "compare", "--resume", partial)
    line = one_line(err)
    assert status == 2 and "arm_attention.npz" in line, line
    assert field.split(".")[-1] in line or field == "aa", line
    assert not (partial / "arm_vanilla.npz").exists()  # refused before any training


def test_analysis_settings_edited_after_an_arm_was_saved_are_taken(partial, capsys):
    # alpha and stats_seed change the analysis, not the arms: the saved arm still belongs.
    edit_run_json(partial, "alpha", 0.01)
    status, err = fibjax(capsys, "compare", "--resume", partial)
    assert status == 0, err
    assert json.loads((partial / "summary.json").read_text())["config"]["alpha"] == 0.01


def test_a_finished_comparison_is_analysed_again(finished, capsys, tmp_path):
    run = tmp_path / "again"
    shutil.copytree(finished, run)
    arms = {p.name: p.read_bytes() for p in run.glob("arm_*.npz")}
    status, err = fibjax(capsys, "report", run, "--alpha", 0.2)
    assert status == 0, err
    assert json.loads((run / "run.json").read_text())["config"]["alpha"] == 0.2
    assert json.loads((run / "summary.json").read_text())["config"]["alpha"] == 0.2
    status, err = fibjax(capsys, "compare", "--resume", run, "--alpha", 0.1)
    assert status == 0, err
    assert json.loads((run / "summary.json").read_text())["config"]["alpha"] == 0.1
    assert {p.name: p.read_bytes() for p in run.glob("arm_*.npz")} == arms
    status, err = fibjax(capsys, "report", run, "--rows", "model")
    assert status == 2 and "--rows and --cols are a sweep's" in one_line(err)
    status, err = fibjax(capsys, "report", run, "--alpha", 1.5)
    assert status == 2 and "alpha=1.5" in one_line(err)
    assert json.loads((run / "run.json").read_text())["config"]["alpha"] == 0.1
    # No new report (a damaged arm): the record keeps the settings of the report there.
    (run / "arm_vanilla.npz").write_bytes(b"not an npz")
    status, err = fibjax(capsys, "report", run, "--alpha", 0.3)
    assert status == 2 and "arm_vanilla.npz" in one_line(err)
    assert json.loads((run / "run.json").read_text())["config"]["alpha"] == 0.1


def test_an_arm_from_another_configuration_is_refused(finished, partial, capsys, tmp_path):
    # What another run's arm carries: its own provenance (here: another learning rate).
    from fibjax.results import provenance

    other = tmp_path / "other"
    other.mkdir()
    with np.load(finished / "arm_vanilla.npz") as npz:
        arrays = dict(npz)
    record = provenance.from_array(arrays["provenance"], "arm")
    record["config"]["train"]["learning_rate"] = 0.01
    record["config"]["run"]["learning_rate"] = 0.01
    arrays["provenance"] = provenance.to_array(record)
    np.savez(other / "arm_vanilla.npz", **arrays)
    shutil.copy(other / "arm_vanilla.npz", partial / "arm_vanilla.npz")
    status, err = fibjax(capsys, "compare", "--resume", partial)
    line = one_line(err)
    assert status == 2 and "arm_vanilla.npz" in line and "learning_rate" in line
    # The same arm copied into a finished run: report and plot refuse, files untouched.
    run = tmp_path / "swapped"
    shutil.copytree(finished, run)
    shutil.copy(other / "arm_vanilla.npz", run / "arm_vanilla.npz")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    for command in ("report", "plot"):
        status, err = fibjax(capsys, command, run)
        assert status == 2 and "learning_rate" in one_line(err)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_results_csv_from_another_run_is_refused(finished, capsys, tmp_path):
    run = tmp_path / "mixed"
    shutil.copytree(finished, run)
    rows = (run / "results.csv").read_text().splitlines()
    seed, model, cell, hidden, *rest = rows[1].split(",")
    rest[1] = repr(float(rest[1]) * 2)  # test_mse
    rows[1] = ",".join([seed, model, cell, hidden, *rest])
    (run / "results.csv").write_text("\n".join(rows) + "\n")
    status, err = fibjax(capsys, "report", run)
    assert status == 2 and "differ from arm_attention.npz" in one_line(err)


@pytest.mark.parametrize(
    "column, value, diverged",
    [
        ("test_mse", "inf", "false"),
        ("test_mse", "nan", "false"),
        ("train_mse", "-1.0", "false"),
        ("cell", "lstm", "false"),
        ("hidden", "3", "false"),
    ],
)
def test_results_csv_values_no_training_gives(finished, capsys, tmp_path, column, value, diverged):
    run = tmp_path / "bad"
    shutil.copytree(finished, run)
    with open(run / "results.csv") as f:
        rows = list(csv.DictReader(f))
    rows[0][column], rows[0]["diverged"] = value, diverged
    with open(run / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    status, err = fibjax(capsys, "report", run)
    assert status == 2 and column in one_line(err)


@pytest.mark.parametrize(
    "field, value",
    [
        ("hidden", "2"),
        ("hidden", 10**30),
        ("seeds", "01"),
        ("seeds", 3),
        ("data", [1, 2]),
        ("learning_rate", None),
        ("alpha", True),
        ("cell", "rnn"),
        ("models", "vanilla,dot"),
        ("models", ["vanilla"]),
        ("models", ["attention", "dot"]),
    ],
)
def test_damaged_run_json_fields_give_one_line(finished, capsys, tmp_path, field, value):
    run = tmp_path / "damaged"
    shutil.copytree(finished, run)
    edit_run_json(run, field, value)
    for command in (["report", run], ["compare", "--resume", run]):
        status, err = fibjax(capsys, *command)
        assert status == 2 and "run.json" in one_line(err)


@pytest.mark.parametrize("record_field", ["environment", "code"])
def test_run_json_records_of_the_wrong_type(finished, capsys, tmp_path, record_field):
    run = tmp_path / "damaged"
    shutil.copytree(finished, run)
    record = json.loads((run / "run.json").read_text())
    record[record_field] = ["not", "an", "object"]
    (run / "run.json").write_text(json.dumps(record))
    status, err = fibjax(capsys, "report", run)
    assert status == 2 and record_field in one_line(err)


def test_every_arm_records_its_provenance(finished):
    from fibjax.results import provenance
    from fibjax.results.provenance import source_digest

    run = json.loads((finished / "run.json").read_text())
    for label in ("attention", "vanilla"):
        with np.load(finished / f"arm_{label}.npz") as arm:
            record = provenance.from_array(arm["provenance"], label)
        assert record["config"]["train"]["model"] == label
        assert record["config"]["train"]["epochs"] == 2 and record["config"]["seeds"] == [0, 1]
        assert record["config"]["data"] == run["config"]["data"]
        assert record["code"]["source_digest"] == source_digest() == run["code"]["source_digest"]
        assert record["code"]["jax"] and record["code"]["flax"]
    summary = json.loads((finished / "summary.json").read_text())
    assert summary["code"]["mixed"] is False
    assert "Trained with fibjax" in (finished / "report.md").read_text()


def test_source_digest_covers_sub_packages(tmp_path, monkeypatch):
    from fibjax.results import provenance

    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("y = 1\n")
    monkeypatch.setattr(provenance, "PACKAGE_DIR", tmp_path)
    before = provenance.source_digest()
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    assert provenance.source_digest() != before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--out", "elsewhere"], "--out conflicts with --resume"),
        (["--epochs", "5"], "--epochs 5 differs from the saved 2"),
        (["--learning-rate", "0.5"], "--learning-rate 0.5 differs"),
        (["--window", "7"], "--window 7 differs"),
        (["--seeds", "3"], "seeds given differ"),
        (["--aa"], "--aa True differs"),
        (["--cell", "lstm"], "--cell lstm differs from the saved 'simple'"),
        (
            ["--models", "dot,vanilla"],
            "--models dot,vanilla differs from the saved attention,vanilla",
        ),
    ],
)
def test_options_that_conflict_with_resume(partial, capsys, args, message):
    status, err = fibjax(capsys, "compare", "--resume", partial, *args)
    assert status == 2 and message in one_line(err)
    assert not (partial / "arm_vanilla.npz").exists()


def test_resume_into_a_folder_that_cannot_be_written(partial, capsys, monkeypatch):
    # Root writes anywhere, so the folder's refusal is simulated where files are created.
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).startswith(str(partial)) and flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    status, err = fibjax(capsys, "compare", "--resume", partial)
    line = one_line(err)
    assert status == 2 and "cannot be written" in line and "Permission denied" in line
    assert sorted(p.name for p in partial.iterdir()) == sorted(["run.json", "arm_attention.npz"])


def test_a_version_change_is_refused_unless_allowed_and_then_reported(partial, capsys, monkeypatch):
    from fibjax.results import provenance

    real = provenance.code_record
    monkeypatch.setattr(provenance, "code_record", lambda: {**real(), "source_digest": "0" * 64})
    status, err = fibjax(capsys, "compare", "--resume", partial)
    line = one_line(err)
    assert status == 2 and "source_digest" in line and "--allow-version-change" in line
    assert not (partial / "arm_vanilla.npz").exists()
    status, err = fibjax(capsys, "compare", "--resume", partial, "--allow-version-change")
    assert status == 0, err
    assert "code changed" in (partial / "report.md").read_text()
    summary = json.loads((partial / "summary.json").read_text())
    assert summary["code"]["mixed"] and summary["code"]["allowed_changes"] == 1
    # The run is whole again: its report can be rebuilt with the code of today.
    monkeypatch.setattr(provenance, "code_record", real)
    assert fibjax(capsys, "report", partial)[0] == 0


def test_an_arm_of_another_code_copied_in_is_refused(finished, capsys, tmp_path):
    from fibjax.results import provenance

    run = tmp_path / "copied"
    shutil.copytree(finished, run)
    path = run / "arm_vanilla.npz"
    with np.load(path) as npz:
        arrays = dict(npz)
    record = provenance.from_array(arrays["provenance"], "arm")
    record["code"]["flax"] = "0.0.1"
    arrays["provenance"] = provenance.to_array(record)
    np.savez(path, **arrays)
    status, err = fibjax(capsys, "report", run)
    assert status == 2 and "code.flax" in one_line(err)


def test_a_report_that_fails_half_way_leaves_the_old_one(finished, capsys, tmp_path, monkeypatch):
    from fibjax.reports import compare_report as report

    run = tmp_path / "copy"
    shutil.copytree(finished, run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", "report.md")

    monkeypatch.setattr(report, "render_markdown", disk_full)
    status, err = fibjax(capsys, "report", run)
    assert status == 2 and "No space left" in one_line(err)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # no temporaries either


def test_an_output_path_that_is_a_folder(finished, capsys, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(finished, run)
    (run / "report.md").unlink()
    (run / "report.md").mkdir()
    summary = (run / "summary.json").read_bytes()
    status, err = fibjax(capsys, "report", run)
    assert status == 2 and "report.md" in one_line(err)
    assert (run / "summary.json").read_bytes() == summary
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_paths_too_long_give_one_line(capsys, tmp_path):
    status, err = fibjax(capsys, "compare", *TINY, "--out", tmp_path / ("x" * 300))
    assert status == 2 and "too long" in one_line(err)


def test_stale_temporaries_of_a_dead_process_are_removed(tmp_path):
    from fibjax.results import storage

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    stale = tmp_path / f".run.json.{pid}.0123abcd.tmp"
    stale.write_text("{")
    mine = tmp_path / f".run.json.{os.getpid()}.0123abcd.tmp"
    mine.write_text("{")
    other = tmp_path / ".notes.tmp"
    other.write_text("keep")
    assert storage.remove_stale_temporaries(tmp_path) == [stale]
    assert mine.exists() and other.exists()


@pytest.mark.slow
def test_a_tiny_training_split_still_gives_a_report(capsys, tmp_path):
    # One training window of 1,180, whose inputs are zero in float32: every training loss is 0,
    # which a log axis cannot show; the report leaves that figure out and says why.
    out = tmp_path / "tiny"
    tiny = ["--seeds", "2", "--epochs", "2", "--train-fraction", "0.001", "--no-cache"]
    status, err = fibjax(capsys, "compare", *tiny, "--out", out)
    assert status == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert "learning_curves" not in summary["figures"]
    assert "learning curves are not drawn" in (out / "report.md").read_text()


def test_seeds_that_cannot_fit_in_memory_are_refused_before_anything(capsys, tmp_path):
    status, err = fibjax(
        capsys, "compare", *TINY[2:], "--seeds", "4000000000", "--out", tmp_path / "x"
    )
    # A run this large first says what it prepares, then refuses in one line.
    assert status == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("fibjax: error: training 4000000000 seed(s)")
    assert not (tmp_path / "x").exists()
    status, err = fibjax(capsys, "compare", *TINY, "--hidden", "200000", "--out", tmp_path / "y")
    assert status == 2 and "GiB" in one_line(err)


KILL_AT = """
import os, signal, sys
from pathlib import Path

real_replace = os.replace


def replace(src, dst, *args, **kwargs):
    if Path(dst).name == sys.argv[1]:  # killed after writing the file, before moving it in
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)


os.replace = replace
from fibjax.cli.entry import main

sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_sigkill_while_an_arm_is_written_then_resume(finished, capsys, tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-c", KILL_AT, "arm_vanilla.npz", "compare", *TINY, "--out", out]
    killed = subprocess.run(list(map(str, command)), capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    assert [p for p in out.iterdir() if p.name.startswith(".arm_vanilla.npz.")]  # left by the kill
    status, err = fibjax(capsys, "compare", "--resume", out)
    assert status == 0, err
    assert (out / "results.csv").read_text() == (finished / "results.csv").read_text()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)


def test_a_kill_while_run_json_was_written_leaves_a_reusable_folder(capsys, tmp_path, monkeypatch):
    # What a SIGKILL inside storage.atomic_path leaves (the real kill: the test above): the
    # temporary file, whole or not, and no run.json.
    out = tmp_path / "killed"
    out.mkdir()
    (out / f".run.json.{dead_pid()}.0badc0de.tmp").write_text('{"format": "fibjax-comp')
    status, err = fibjax(capsys, "compare", "--resume", out)
    assert status == 2 and f"fibjax compare --out {out}" in one_line(err)
    assert not list(out.iterdir())  # the leftover is gone, so --out can use the folder
    (out / "run.json").write_text('{"format": "fibjax-comp')  # a partial run.json, no arms
    from fibjax.studies import compare

    def stop(*args, **kwargs):  # the folder is all this test checks: no training
        raise SystemExit

    monkeypatch.setattr(compare, "run_comparison", stop)
    with pytest.raises(SystemExit):
        fibjax(capsys, "compare", *TINY, "--out", out)
    assert json.loads((out / "run.json").read_text())["config"]["epochs"] == 2


def test_a_kill_while_the_report_was_moved_in_then_resume(finished, capsys, tmp_path):
    out = tmp_path / "killed"
    shutil.copytree(finished, out)
    leftover = out / f".report.md.{dead_pid()}.0badc0de.tmp"
    leftover.write_text("# half")
    (out / "report.md").unlink()
    status, err = fibjax(capsys, "compare", "--resume", out)
    assert status == 0, err
    assert not leftover.exists() and (out / "report.md").read_text().startswith("# fibjax")


@pytest.mark.parametrize(
    "env, message",
    [
        ({"JAX_ENABLE_X64": "1"}, "JAX_ENABLE_X64"),
        ({"JAX_PLATFORMS": "{absent}"}, "JAX_PLATFORMS='{absent}'"),
        ({"JAX_PLATFORMS": "nonesuch"}, "JAX_PLATFORMS='nonesuch'"),
    ],
)
def test_unsupported_jax_settings_give_one_line(env, message, tmp_path):
    # "{absent}": a real platform this machine has no backend for (CUDA, unless it has one).
    import jax.extend

    absent = next(p for p in ("cuda", "tpu") if p not in jax.extend.backend.backends())
    env = {key: value.replace("{absent}", absent) for key, value in env.items()}
    message = message.replace("{absent}", absent)
    done = subprocess.run(
        [sys.executable, "-m", "fibjax", "compare", *TINY, "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert done.returncode == 2 and message in one_line(done.stderr)
    assert not (tmp_path / "x").exists()


def test_a_terminal_that_is_not_utf8_still_gets_the_report(finished):
    done = subprocess.run(
        [sys.executable, "-m", "fibjax", "report", str(finished)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Report:" in done.stdout


def test_a_large_run_says_what_it_does_before_jax_starts(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fibjax",
            "compare",
            *TINY[2:],
            "--seeds",
            "200000",
            "--out",
            str(tmp_path / "big"),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stderr.readline()
    finally:
        proc.kill()
        proc.communicate()
    assert first.startswith("preparing a run of 200000 seeds")


def test_train_refuses_a_model_too_large_for_memory(capsys):
    status, err = fibjax(capsys, "train", "--hidden", "200000", "--epochs", "1", "--no-cache")
    assert status == 2 and "GiB" in one_line(err)


def last_line(err: str) -> str:
    """The error line after the progress lines (stderr when it is not a terminal)."""
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


def _full_disk(real):
    """``real`` that raises "No space left on device" from its second call on."""
    calls = []

    def write(path, *args, **kwargs):
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, *args, **kwargs)

    return write


@pytest.mark.parametrize("command", ["compare", "sweep"])
def test_a_full_disk_names_the_path_what_is_saved_and_how_to_finish(
    command, monkeypatch, tmp_path, capsys
):
    from fibjax.results import storage

    out = tmp_path / command
    args = [command, *TINY, "--out", out]
    if command == "sweep":
        args = [command, "--models", "dot", "--window", "4", "--scaling", "minmax,log"]
        args += ["--seeds", "2", "--epochs", "1", "--n-terms", "40", "--out", out]
    monkeypatch.setattr(storage, "write_npz", _full_disk(storage.write_npz))
    status, err = fibjax(capsys, *args)
    line = last_line(err)
    assert status == 2 and "No space left on device: " in line and str(out) in line, line
    assert "saved in" in line and f"--resume {out}" in line, line
    saved = sorted(p.name for p in out.glob("arm_*.npz"))
    assert len(saved) == 1 and saved[0].removeprefix("arm_").removesuffix(".npz") in line


def test_a_full_disk_at_the_report_says_every_model_is_saved(monkeypatch, tmp_path, capsys):
    from fibjax.results import storage

    out = tmp_path / "run"
    monkeypatch.setattr(storage, "write_text", _full_disk(storage.write_text))
    status, err = fibjax(capsys, "compare", *TINY, "--out", out)
    line = last_line(err)
    assert status == 2 and "No space left on device" in line and "every model is saved" in line
    assert f"fibjax report {out}" in line
