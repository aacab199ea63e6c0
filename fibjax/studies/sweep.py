"""Sweeps: where does attention help? A grid of comparisons trained with few compiled programs.

This module holds a sweep's run folder and the training of its arms; the grid, its arms and
its shards are in :mod:`fibjax.studies.sweep_grid`. Arms that share a compiled program
(:meth:`fibjax.studies.sweep_grid.Arm.program`) are trained one after another on it.

Each arm is saved to ``arm_<name>.npz`` as soon as it finishes, with its provenance; a sweep
resumes, and splits into disjoint shards (``--shard K/N``, for a job array) that
:func:`fibjax.studies.sweep_results.merge` puts back together after checking that they belong
to one sweep.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax.traverse_util import flatten_dict

from fibjax.cluster.distributed import Peers
from fibjax.data import windows_from_config
from fibjax.models import BASELINE
from fibjax.results import provenance, storage
from fibjax.studies.compiles import CompilesAhead, compile_workers
from fibjax.studies.sweep_grid import Arm, SweepConfig, config_from_dict, parse_shard, shard_arms
from fibjax.training import runtime
from fibjax.training.seeds import compile_seeds

SWEEP_FILE = "sweep.json"
SWEEP_FORMAT = "fibjax-sweep/1"
ARM_ARRAYS = ("seeds", "learning_rates", "test_mse", "train_mse", "epoch_losses", "diverged_epoch")


# ------------------------------------------------------------------------ the run folder


def arm_path(out_dir: Path, arm: Arm) -> Path:
    return Path(out_dir) / f"arm_{arm.name}.npz"


def check_out_dir(out_dir: Path, *, name: str = "--out") -> None:
    """Refuses a folder a new sweep cannot be written to: not a folder, or one that holds
    anything (a sweep, or other files).

    ``name`` is how messages call the folder: the option that gave it (``--out``), or for
    ``fibjax merge`` the merged sweep's folder.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{name} {out_dir}: exists and is not a folder")
    if out_dir.is_dir():
        storage.remove_stale_temporaries(out_dir)
        if (out_dir / SWEEP_FILE).exists():
            hint = f"continue it with --resume {out_dir}, or " if name == "--out" else ""
            raise ValueError(
                f"{name} {out_dir}: already holds a fibjax sweep; {hint}choose another folder"
            )
        if any(out_dir.iterdir()):
            raise ValueError(f"{name} {out_dir}: exists, is not empty and is not a fibjax sweep")


def prepare_out_dir(
    out_dir: Path,
    config: SweepConfig,
    environment: dict[str, Any],
    shard: tuple[int, int] | None = None,
    *,
    name: str = "--out",
) -> None:
    """Creates ``out_dir`` for a new sweep (or shard), refusing a folder that holds anything
    (:func:`check_out_dir`)."""
    check_out_dir(out_dir, name=name)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        storage.write_json(out_dir / SWEEP_FILE, _record(config, environment, shard))
    except OSError as error:
        raise ValueError(f"{name} {out_dir}: cannot be written ({error.strerror})") from None


def _record(config: SweepConfig, environment: dict[str, Any], shard, **more) -> dict[str, Any]:
    return {
        "format": SWEEP_FORMAT,
        "config": config.to_dict(),
        "shard": None if shard is None else list(shard),
        "code": provenance.code_record(),
        "environment": environment,
        **more,
    }


def load_sweep(out_dir: Path) -> tuple[SweepConfig, dict[str, Any]]:
    """The configuration of a sweep folder and the whole record of its ``sweep.json``."""
    path = Path(out_dir) / SWEEP_FILE
    record = storage.read_json(path, required=("format", "config", "shard", "code", "environment"))
    if record["format"] != SWEEP_FORMAT:
        raise storage.ResultFileError(
            f"{path}: format {record['format']!r} is not {SWEEP_FORMAT!r}"
        )
    changes = record.get("code_changes", [])
    if not isinstance(changes, list) or not all(
        isinstance(code, dict) for code in [record["code"], *changes]
    ):
        raise storage.ResultFileError(
            f"{path}: code must be a JSON object and code_changes a list of them"
        )
    shard = record["shard"]
    if shard is not None and not (
        isinstance(shard, list) and len(shard) == 2 and all(type(x) is int for x in shard)
    ):
        raise storage.ResultFileError(f"{path}: shard {shard!r} must be null or [K, N]")
    try:
        config = config_from_dict(record["config"])
        if shard is not None:
            shard = parse_shard(f"{shard[0]}/{shard[1]}")
    except (ValueError, TypeError, IndexError, KeyError) as error:
        raise storage.ResultFileError(f"{path}: {error}") from None
    record["shard"] = shard
    return config, record


def is_sweep(folder: Path) -> bool:
    """Whether ``folder`` holds a sweep (rather than a comparison)."""
    return (Path(folder) / SWEEP_FILE).exists()


def expected_config(config: SweepConfig, arm: Arm) -> dict[str, Any]:
    """The provenance ``config`` part that ``arm`` of ``config`` must carry: its own training,
    data, seeds and learning rates, and the whole sweep's configuration (less the seeds and the
    analysis fields, ``SweepConfig.ANALYSIS``)."""
    train = config.train_config(arm.cell, arm.model, arm.hidden)
    record = provenance.config_record(
        train, config.data_config(arm.window, arm.scaling), config.seeds
    )
    record["train"]["learning_rate"] = None  # an axis of the arm: learning_rates below
    record["learning_rates"] = list(config.learning_rates)
    record["sweep"] = provenance.run_fields(config)
    return record


def load_arm(
    out_dir: Path, config: SweepConfig, record: dict[str, Any], arm: Arm
) -> dict[str, Any]:
    """A saved arm, checked against the sweep's configuration and code (:func:`load_sweep`).

    Raises:
      fibjax.results.provenance.ProvenanceError: the arm was trained under another configuration or
        under code the sweep did not allow; the message names the file and the field.
      fibjax.results.storage.ResultFileError: the file is damaged.
    """
    path = arm_path(out_dir, arm)
    sweep_file = Path(out_dir) / SWEEP_FILE
    arrays = storage.read_npz(path, required=(*ARM_ARRAYS, "provenance"))
    provenance.check_saved(
        arrays["provenance"],
        expected_config(config, arm),
        run_codes(record),
        str(sweep_file),
        str(path),
        analysis={"sweep": config.ANALYSIS},
    )
    shape = (len(config.learning_rates), len(config.seeds))
    if tuple(arrays["seeds"].tolist()) != config.seeds:
        raise storage.ResultFileError(f"{path}: its seeds differ from {SWEEP_FILE}")
    for name in ARM_ARRAYS[2:]:
        if arrays[name].shape[:2] != shape:
            raise storage.ResultFileError(f"{path}: {name} has shape {arrays[name].shape}")
    _check_values(path, arrays)
    return arrays


def _check_values(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Refuses values no training writes: an MSE or loss that is negative or infinite (a
    diverged seed's is NaN), a negative epoch, a training time that is not a number."""
    for name in ("test_mse", "train_mse", "epoch_losses"):
        values = arrays[name]
        # The model's output is a tanh, so its MSE is at most 4: infinite only when edited.
        if values.dtype.kind != "f" or np.any(np.isinf(values) | (values < 0)):
            raise storage.ResultFileError(
                f"{path}: {name} holds values no training writes (negative, infinite or not"
                " numbers); the file was edited or damaged"
            )
    epochs = arrays["diverged_epoch"]
    if epochs.dtype.kind not in "iu" or np.any(epochs < 0):
        raise storage.ResultFileError(f"{path}: diverged_epoch must be non-negative integers")
    if "train_s" in arrays:
        seconds = arrays["train_s"]
        if seconds.shape != () or seconds.dtype.kind not in "iuf" or not seconds >= 0:
            raise storage.ResultFileError(f"{path}: train_s must be a number of seconds")


def run_codes(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The code records a sweep's arms may have been trained under."""
    return [record["code"], *record.get("code_changes", [])]


def open_for_resume(
    out_dir: Path, allow_version_change: bool = False
) -> tuple[SweepConfig, dict[str, Any], dict[str, dict[str, Any]]]:
    """Checks a sweep folder before any training; returns its config, record and saved arms.

    Every saved arm must belong to the folder's part of the sweep and agree with
    ``sweep.json``. Code that differs from the code the sweep began under is refused unless
    ``allow_version_change``; the change is then added to ``sweep.json`` (``code_changes``).
    """
    config, record, saved = load_saved(out_dir)
    if len(saved) == len(shard_arms(config, record["shard"])):
        return config, record, saved
    sweep_file = Path(out_dir) / SWEEP_FILE
    now = provenance.admit_code(run_codes(record), str(sweep_file), allow_version_change, "sweep")
    if now is None:
        return config, record, saved
    record["code_changes"] = [*record.get("code_changes", []), now]
    storage.write_json(sweep_file, _saved_record(record))
    return config, record, saved


def load_saved(out_dir: Path) -> tuple[SweepConfig, dict[str, Any], dict[str, dict[str, Any]]]:
    """A sweep folder's config, record and saved arms, each checked against ``sweep.json``
    (:func:`load_arm`); a file that is not an arm of the folder's part is refused."""
    config, record = load_sweep(out_dir)
    arms = shard_arms(config, record["shard"])
    names = {arm.name for arm in arms}
    for path in sorted(Path(out_dir).glob("arm_*.npz")):
        if path.name[len("arm_") : -len(".npz")] not in names:
            raise provenance.ProvenanceError(
                f"{path}: is not an arm of this {'shard' if record['shard'] else 'sweep'}"
                f" ({SWEEP_FILE})"
            )
    saved = {
        arm.name: load_arm(out_dir, config, record, arm)
        for arm in arms
        if arm_path(out_dir, arm).exists()
    }
    return config, record, saved


def _saved_record(record: dict[str, Any]) -> dict[str, Any]:
    shard = record["shard"]
    return {**record, "shard": None if shard is None else list(shard)}


# --------------------------------------------------------------------------- training


@dataclasses.dataclass
class SweepProgress:
    """What a sweep did: arms trained and saved, programs compiled, time spent.

    Attributes:
      saved: the arms saved, in order.
      programs: programs compiled.
      compile_s: seconds spent compiling, summed over the programs (some compile at once).
      wait_s: seconds training waited for a program to be compiled.
      train_s: seconds spent training.
      compile_workers: programs compiled at once, at most.
    """

    saved: list[str] = dataclasses.field(default_factory=list)
    programs: int = 0
    compile_s: float = 0.0
    wait_s: float = 0.0
    train_s: float = 0.0
    compile_workers: int = 1


def run_sweep(
    out_dir: Path,
    *,
    progress: Any = None,
    done: SweepProgress | None = None,
    program_cache: Path | None = None,
    allow_version_change: bool = False,
    peers: Peers | None = None,
) -> dict[str, dict[str, Any]]:
    """Trains every arm of the sweep (or shard) in ``out_dir`` not saved yet, saving each.

    Across processes (``peers``), process 0 reads the folder and says what is left; every
    process trains it on the devices of all, and process 0 alone saves.

    Arms that share a program (:meth:`fibjax.studies.sweep_grid.Arm.program`) are trained one
    after another on one compiled program; each is saved as soon as it finishes.

    Args:
      out_dir: a folder made by :func:`prepare_out_dir` (or an interrupted sweep's).
      progress: a :class:`fibjax.training.progress.Progress`, or ``None``.
      done: filled in as the sweep goes (arms saved, programs compiled, seconds).
      program_cache: where traced training programs are kept between runs, or ``None``.
      allow_version_change: resume under other code than the sweep began with.
      peers: this process among those of a distributed run (default: the only one).

    Returns:
      Every arm's arrays (of this shard) by name (on process 0; nothing on the others).
    """
    done = SweepProgress() if done is None else done
    peers = Peers() if peers is None else peers
    arms: dict[str, dict[str, Any]] = {}

    def plan() -> dict[str, Any]:
        config, record, saved = open_for_resume(out_dir, allow_version_change)
        arms.update(saved)
        todo = [arm.name for arm in shard_arms(config, record["shard"]) if arm.name not in saved]
        return {"config": config.to_dict(), "shard": record["shard"], "todo": todo}

    decided = peers.decide(plan, (storage.ResultFileError,))
    config = config_from_dict(decided["config"])
    shard = None if decided["shard"] is None else tuple(decided["shard"])
    todo = [arm for arm in shard_arms(config, shard) if arm.name in decided["todo"]]
    groups = [list(group) for _, group in itertools.groupby(todo, key=Arm.program)]
    # Read once, not at each arm: the source digest reads every module, and on the thread that
    # trains each read then waits for Python's lock, which the compiling threads' tracing holds.
    code = provenance.code_record()
    done.compile_workers = compile_workers(len(groups), peers)

    def compile_group(index: int):
        arm = groups[index][0]
        train = config.train_config(arm.cell, arm.model, arm.hidden)
        data = windows_from_config(config.data_config(arm.window, arm.scaling))
        return compile_seeds(
            train,
            data,
            config.seeds,
            learning_rates=config.learning_rates,
            program_cache=program_cache,
            initials_along=(*config.models, BASELINE),
        )

    with CompilesAhead(compile_group, len(groups), done.compile_workers) as programs:
        for index, group in enumerate(groups):
            arm = group[0]
            what = f"compiling {arm.cell}-{arm.model}-h{arm.hidden}-w{arm.window}"
            run, seconds = programs.get(index, progress, what)
            done.compile_s, done.programs = done.compile_s + seconds, done.programs + 1
            done.wait_s = programs.wait_s
            _train_group(config, group, run, out_dir, arms, done, progress, len(todo), peers, code)
    return arms


def _train_group(config, group, run, out_dir, arms, done, progress, n_todo, peers, code) -> None:
    """Trains the arms of one program, one after another, saving each (on process 0) with the
    process's ``code`` record."""
    for arm in group:
        if progress is not None:
            on = runtime.devices_in_words(run.devices)
            which = f"arm {len(done.saved) + 1} of {n_todo}"
            progress.phase(f"training {arm.name} ({which}, on {on})")
        trained = train_arm(config, arm, run, done, code)
        if peers.main:  # process 0 keeps the results
            arms[arm.name] = trained
            storage.write_npz(arm_path(out_dir, arm), arms[arm.name])
        done.saved.append(arm.name)


def train_arm(
    config: SweepConfig, arm: Arm, run, done: SweepProgress, code: dict[str, str] | None = None
) -> dict[str, Any]:
    data_config = config.data_config(arm.window, arm.scaling)
    start = time.perf_counter()
    result = jax.block_until_ready(run(windows_from_config(data_config)))
    seconds = time.perf_counter() - start
    done.train_s += seconds
    train = config.train_config(arm.cell, arm.model, arm.hidden)
    record = {
        **provenance.build(train, data_config, config.seeds, code),
        "config": expected_config(config, arm),
    }
    return {
        "provenance": provenance.to_array(record),
        "seeds": np.asarray(config.seeds, np.int64),
        "learning_rates": np.asarray(config.learning_rates, np.float64),
        "test_mse": np.asarray(result.test_mse),
        "train_mse": np.asarray(result.train_mse),
        "epoch_losses": np.asarray(result.epoch_losses),
        "diverged_epoch": np.asarray(result.diverged_epoch),
        "train_s": np.asarray(seconds),
        **flatten_dict({"params": result.params}, sep="/"),
    }
