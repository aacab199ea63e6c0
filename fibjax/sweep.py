"""Sweeps: where does attention help? A grid of comparisons trained with few compiled programs.

A grid point is one attention form against the vanilla model of the same cell, hidden size,
window, scaling and learning rate, under the same seeds (paired, as in :mod:`fibjax.compare`).
The work is cut into *arms*: one model of one cell, hidden size, window and scaling, trained at
every learning rate of the grid under every seed in one compiled call (vmapped over learning
rate × seed). Each vanilla arm serves every attention form of its setting. Arms that differ only
in their scaling share one compiled program: the windows are its argument, not its constants
(:func:`fibjax.train.compile_seeds`).

Each arm is saved to ``arm_<name>.npz`` as soon as it finishes, with its provenance; a sweep
resumes, and splits into disjoint shards (``--shard K/N``, for a job array) that
:func:`merge` puts back together after checking that they belong to one sweep.
"""

from __future__ import annotations

import dataclasses
import itertools
import numbers
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax.traverse_util import flatten_dict

from fibjax import provenance, storage
from fibjax.data import DataConfig, windows_from_config
from fibjax.distributed import Peers
from fibjax.models import BASELINE, POOLINGS, cell_entry, pooling_entry
from fibjax.train import TrainConfig, check_seeds, compile_seeds

SWEEP_FILE = "sweep.json"
SWEEP_FORMAT = "fibjax-sweep/1"
ARM_ARRAYS = ("seeds", "learning_rates", "test_mse", "train_mse", "epoch_losses", "diverged_epoch")
# The grid's axes, in the order of its tables; "model" is the attention form.
AXES = ("cell", "model", "hidden", "window", "scaling", "learning_rate")
# The sweep's options that take lists, by the SweepConfig field that holds each.
AXIS_FIELDS = {
    "cell": "cells",
    "model": "models",
    "hidden": "hiddens",
    "window": "windows",
    "scaling": "scalings",
    "learning_rate": "learning_rates",
}


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A sweep's full specification; validated when built. The defaults are the default sweep.

    Attributes:
      cells: recurrent cells, names from :data:`fibjax.models.CELLS`.
      models: attention forms, names from :data:`fibjax.models.POOLINGS` (each compared with
        the baseline, :data:`fibjax.models.BASELINE`, which is always trained).
      hiddens: hidden sizes.
      windows: window lengths.
      scalings: data scalings (:data:`fibjax.data.SCALINGS`).
      learning_rates: step sizes; all of them train in one compiled call per arm.
      seeds: the seeds of every arm (paired).
      epochs, batch_size, optimizer: the training protocol of every arm.
      n_terms, train_fraction, split_seed: the data set, besides window and scaling.
      alpha: familywise level of the primary tests, corrected over the grid by Holm's method.
      stats_seed: seed of every resampling in the statistics.
      rows, cols: the axes of the heat map (:data:`AXES`).
    """

    cells: tuple[str, ...] = ("simple", "gru")
    models: tuple[str, ...] = ("attention", "additive", "dot")
    hiddens: tuple[int, ...] = (2,)
    windows: tuple[int, ...] = (10, 20, 40)
    scalings: tuple[str, ...] = ("minmax", "log")
    learning_rates: tuple[float, ...] = (1e-3,)
    seeds: tuple[int, ...] = tuple(range(64))
    epochs: int = 30
    batch_size: int = 1
    optimizer: str = "keras_adam"
    n_terms: int = 1200
    train_fraction: float = 0.7
    split_seed: int = 13
    alpha: float = 0.05
    stats_seed: int = 0
    rows: str = "model"
    cols: str = "window"

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", check_seeds(self.seeds))
        for axis, name in AXIS_FIELDS.items():
            object.__setattr__(self, name, _axis_values(axis, getattr(self, name)))
        if BASELINE in self.models:
            raise ValueError(
                f"models: {BASELINE} is the baseline, always trained; list only the attention"
                " forms to compare with it"
            )
        for model in self.models:
            if not POOLINGS[model].has_attention:
                raise ValueError(f"model {model!r} is not an attention form")
        for name in ("rows", "cols"):
            if getattr(self, name) not in AXES:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is not an axis; choose from {AXES}"
                )
        if self.rows == self.cols:
            raise ValueError(f"rows and cols are both {self.rows!r}; choose two different axes")
        _check_fraction("alpha", self.alpha)
        object.__setattr__(self, "alpha", float(self.alpha))
        if isinstance(self.stats_seed, bool) or not isinstance(self.stats_seed, numbers.Integral):
            raise ValueError(f"stats_seed={self.stats_seed!r} must be an integer >= 0")
        if self.stats_seed < 0:
            raise ValueError(f"stats_seed={self.stats_seed!r} must be an integer >= 0")
        object.__setattr__(self, "stats_seed", int(self.stats_seed))
        # Every setting is validated as the configs that train it validate it.
        protocol = self.train_config(self.cells[0], BASELINE, self.hiddens[0])
        for name in ("epochs", "batch_size"):
            object.__setattr__(self, name, getattr(protocol, name))
        for window, scaling in itertools.product(self.windows, self.scalings):
            data = self.data_config(window, scaling)
        for name in ("n_terms", "train_fraction", "split_seed"):
            object.__setattr__(self, name, getattr(data, name))

    def train_config(self, cell: str, model: str, hidden: int) -> TrainConfig:
        """The :class:`TrainConfig` of one arm (its learning rate is the first of the grid's)."""
        return TrainConfig(
            model=model,
            cell=cell,
            hidden=hidden,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rates[0],
            optimizer=self.optimizer,
        )

    def data_config(self, window: int, scaling: str) -> DataConfig:
        """The :class:`DataConfig` of one window length and scaling."""
        return DataConfig(
            n_terms=self.n_terms,
            window=window,
            train_fraction=self.train_fraction,
            split_seed=self.split_seed,
            scaling=scaling,
        )

    def arms(self) -> list[Arm]:
        """Every arm, in a fixed order: arms that share a compiled program are neighbours."""
        return [
            Arm(cell, model, hidden, window, scaling)
            for cell, hidden, window, model, scaling in itertools.product(
                self.cells, self.hiddens, self.windows, (*self.models, BASELINE), self.scalings
            )
        ]

    def points(self) -> list[dict[str, Any]]:
        """Every grid point's settings (keys :data:`AXES`), in the order of the tables."""
        return [
            dict(zip(AXES, values, strict=True))
            for values in itertools.product(*(getattr(self, AXIS_FIELDS[a]) for a in AXES))
        ]

    def varying_axes(self) -> list[str]:
        """The axes that take more than one value."""
        return [axis for axis in AXES if len(getattr(self, AXIS_FIELDS[axis])) > 1]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record from which :func:`config_from_dict` rebuilds this config."""
        return {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in dataclasses.fields(self)
            for value in [getattr(self, field.name)]
        }


def _axis_values(axis: str, values: Any) -> tuple[Any, ...]:
    if isinstance(values, str) or not isinstance(values, (tuple, list)):
        raise ValueError(f"{AXIS_FIELDS[axis]}={values!r} must be a sequence")
    values = tuple(values)
    if not values:
        raise ValueError(f"{AXIS_FIELDS[axis]} is empty; give at least one {axis}")
    if axis == "cell":
        for cell in values:
            cell_entry(cell)
    elif axis == "model":
        for model in values:
            pooling_entry(model)
    elif axis in ("hidden", "window"):
        for value in values:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{axis}={value!r} must be an integer >= 1")
        values = tuple(int(v) for v in values)
    elif axis == "learning_rate":
        values = tuple(
            dataclasses.replace(TrainConfig(BASELINE), learning_rate=v).learning_rate
            for v in values
        )
    if len(set(values)) != len(values):
        raise ValueError(f"{AXIS_FIELDS[axis]}={list(values)} names a value twice")
    return values


def _check_fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise ValueError(f"{name}={value!r} must be a number strictly between 0 and 1")


def config_from_dict(record: dict[str, Any]) -> SweepConfig:
    """Rebuilds a :class:`SweepConfig` from :meth:`SweepConfig.to_dict` (validated again)."""
    try:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(record).items()}
        return SweepConfig(**fields)
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a fibjax sweep configuration ({error})") from None


@dataclasses.dataclass(frozen=True)
class Arm:
    """One model of one setting, trained at every learning rate under every seed."""

    cell: str
    model: str
    hidden: int
    window: int
    scaling: str

    @property
    def name(self) -> str:
        """The arm's file name stem, e.g. ``gru-dot-h2-w20-log``."""
        return f"{self.cell}-{self.model}-h{self.hidden}-w{self.window}-{self.scaling}"

    def program(self) -> tuple[str, str, int, int]:
        """What its compiled program depends on: arms equal here share one."""
        return (self.cell, self.model, self.hidden, self.window)


def arm_path(out_dir: Path, arm: Arm) -> Path:
    return Path(out_dir) / f"arm_{arm.name}.npz"


# ----------------------------------------------------------------------------- shards


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as ``(K, N)``, with ``1 <= K <= N``.

    >>> parse_shard("2/5")
    (2, 5)
    """
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r} must be K/N, e.g. 2/8") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard {text!r}: K must be from 1 to N")
    return k, n


def arm_cost(config: SweepConfig, arm: Arm) -> float:
    """The relative training cost of an arm: its time steps × its per-seed working set."""
    gates = cell_entry(arm.cell).gates
    return float(arm.window * arm.hidden * gates * pooling_entry(arm.model).cost)


def shard_arms(config: SweepConfig, shard: tuple[int, int] | None) -> list[Arm]:
    """The arms of shard ``K/N``: the ``K``-th of ``N`` contiguous runs of :meth:`SweepConfig.arms`
    of about equal cost (all arms when ``shard`` is ``None``).

    With at least ``N`` compiled programs in the grid, the arms of one program stay in one
    shard, so no program is compiled twice. The parts are disjoint and together hold every arm;
    a shard may be empty when there are more shards than arms.

    >>> config = SweepConfig(cells=("simple",), models=("dot",), windows=(6,), n_terms=80,
    ...                      scalings=("minmax", "log"), seeds=(0,))
    >>> [a.name for a in shard_arms(config, (2, 2))]
    ['simple-vanilla-h2-w6-minmax', 'simple-vanilla-h2-w6-log']
    """
    arms = config.arms()
    if shard is None:
        return arms
    k, n = shard
    # Whole programs' arms when there are enough programs to go round, so that no program is
    # compiled by two shards; single arms otherwise.
    groups = [list(g) for _, g in itertools.groupby(arms, key=Arm.program)]
    if len(groups) < n:
        groups = [[arm] for arm in arms]
    costs = np.cumsum([sum(arm_cost(config, arm) for arm in group) for group in groups])
    # A group goes to the part its cost's midpoint falls in.
    midpoints = costs - np.diff(np.concatenate([[0.0], costs])) / 2
    part = np.minimum((midpoints / costs[-1] * n).astype(int), n - 1)
    return [arm for group, p in zip(groups, part, strict=True) if p == k - 1 for arm in group]


# ------------------------------------------------------------------------ the run folder


def prepare_out_dir(
    out_dir: Path,
    config: SweepConfig,
    environment: dict[str, Any],
    shard: tuple[int, int] | None = None,
) -> None:
    """Creates ``out_dir`` for a new sweep (or shard), refusing a folder that holds anything."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir}: exists and is not a folder")
    if out_dir.is_dir():
        storage.remove_stale_temporaries(out_dir)
        if (out_dir / SWEEP_FILE).exists():
            raise ValueError(
                f"--out {out_dir}: already holds a fibjax sweep; continue it with --resume"
                f" {out_dir}, or choose another folder"
            )
        if any(out_dir.iterdir()):
            raise ValueError(f"--out {out_dir}: exists, is not empty and is not a fibjax sweep")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        storage.write_json(out_dir / SWEEP_FILE, _record(config, environment, shard))
    except OSError as error:
        raise ValueError(f"--out {out_dir}: cannot be written ({error.strerror})") from None


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
    codes = [record["code"], *record.get("code_changes", [])]
    if not all(isinstance(code, dict) for code in codes):
        raise storage.ResultFileError(f"{path}: code and code_changes must be JSON objects")
    try:
        config = config_from_dict(record["config"])
        shard = record["shard"]
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
    data, seeds and learning rates, and the whole sweep's configuration (less the seeds)."""
    train = config.train_config(arm.cell, arm.model, arm.hidden)
    record = provenance.config_record(
        train, config.data_config(arm.window, arm.scaling), config.seeds
    )
    record["train"]["learning_rate"] = None  # an axis of the arm: learning_rates below
    record["learning_rates"] = list(config.learning_rates)
    record["sweep"] = {k: v for k, v in config.to_dict().items() if k != "seeds"}
    return record


def load_arm(
    out_dir: Path, config: SweepConfig, record: dict[str, Any], arm: Arm
) -> dict[str, Any]:
    """A saved arm, checked against the sweep's configuration and code (:func:`load_sweep`).

    Raises:
      fibjax.provenance.ProvenanceError: the arm was trained under another configuration or
        under code the sweep did not allow; the message names the file and the field.
      fibjax.storage.ResultFileError: the file is damaged.
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
    )
    shape = (len(config.learning_rates), len(config.seeds))
    if tuple(arrays["seeds"].tolist()) != config.seeds:
        raise storage.ResultFileError(f"{path}: its seeds differ from {SWEEP_FILE}")
    for name in ARM_ARRAYS[2:]:
        if arrays[name].shape[:2] != shape:
            raise storage.ResultFileError(f"{path}: {name} has shape {arrays[name].shape}")
    return arrays


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
    """What a sweep did: arms trained and saved, programs compiled, time spent."""

    saved: list[str] = dataclasses.field(default_factory=list)
    programs: int = 0
    compile_s: float = 0.0
    train_s: float = 0.0


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

    Arms that share a program (:meth:`Arm.program`) are trained one after another on one
    compiled program; each is saved as soon as it finishes.

    Args:
      out_dir: a folder made by :func:`prepare_out_dir` (or an interrupted sweep's).
      progress: a :class:`fibjax.progress.Progress`, or ``None``.
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
    for _, group in itertools.groupby(todo, key=Arm.program):
        group = list(group)
        run = _compile(config, group[0], progress, done, program_cache)
        for arm in group:
            if progress is not None:
                progress.phase(f"training {arm.name} (arm {len(done.saved) + 1} of {len(todo)})")
            trained = _train_arm(config, arm, run, done)
            if peers.main:  # process 0 keeps the results
                arms[arm.name] = trained
                storage.write_npz(arm_path(out_dir, arm), arms[arm.name])
            done.saved.append(arm.name)
    return arms


def _compile(config: SweepConfig, arm: Arm, progress, done: SweepProgress, program_cache):
    train = config.train_config(arm.cell, arm.model, arm.hidden)
    data = windows_from_config(config.data_config(arm.window, arm.scaling))
    if progress is not None:
        progress.phase(f"compiling {arm.cell}-{arm.model}-h{arm.hidden}-w{arm.window}")
    start = time.perf_counter()
    run = compile_seeds(
        train, data, config.seeds, learning_rates=config.learning_rates, program_cache=program_cache
    )
    done.compile_s += time.perf_counter() - start
    done.programs += 1
    return run


def _train_arm(config: SweepConfig, arm: Arm, run, done: SweepProgress) -> dict[str, Any]:
    data_config = config.data_config(arm.window, arm.scaling)
    start = time.perf_counter()
    result = jax.block_until_ready(run(windows_from_config(data_config)))
    seconds = time.perf_counter() - start
    done.train_s += seconds
    train = config.train_config(arm.cell, arm.model, arm.hidden)
    record = {
        **provenance.build(train, data_config, config.seeds),
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


# ----------------------------------------------------------------------------- results


def point_mses(config: SweepConfig, arms: dict[str, dict[str, Any]], point: dict[str, Any]):
    """``(attention, vanilla)`` test MSEs of one grid point, ``<float64>[n_seeds]`` each,
    diverged seeds as NaN."""
    r = config.learning_rates.index(point["learning_rate"])
    key = (point["cell"], point["hidden"], point["window"], point["scaling"])

    def mse(model: str) -> np.ndarray:
        arm = arms[Arm(key[0], model, key[1], key[2], key[3]).name]
        diverged = arm["diverged_epoch"][r] > 0
        return np.where(diverged, np.nan, arm["test_mse"][r].astype(np.float64))

    return mse(point["model"]), mse(BASELINE)


def load_all(out_dir: Path) -> tuple[SweepConfig, dict[str, Any], dict[str, dict[str, Any]]]:
    """A finished sweep's config, record and every arm, each checked (:func:`load_arm`).

    Raises:
      fibjax.storage.ResultFileError: an arm is missing, damaged or disagrees with the sweep.
    """
    config, record = load_sweep(out_dir)
    if record["shard"] is not None:
        k, n = record["shard"]
        raise storage.ResultFileError(
            f"{out_dir}: holds shard {k}/{n} of a sweep; merge the shards with fibjax merge OUT"
            " DIR... for the report"
        )
    arms = {}
    for arm in config.arms():
        if not arm_path(out_dir, arm).exists():
            raise storage.ResultFileError(
                f"{arm_path(out_dir, arm)}: missing; finish the sweep with fibjax sweep --resume"
                f" {out_dir}"
            )
        arms[arm.name] = load_arm(out_dir, config, record, arm)
    return config, record, arms


# ------------------------------------------------------------------------------- merge


def merge(out_dir: Path, shard_dirs: Sequence[Path], environment: dict[str, Any]) -> None:
    """Checks that ``shard_dirs`` hold shards of one sweep and writes the whole sweep to
    ``out_dir`` (a new or empty folder); the report is then built from it.

    Raises:
      fibjax.provenance.ProvenanceError: the folders belong to different sweeps (grid, seeds,
        epochs, code), an arm disagrees with its folder, or the same arm differs between two.
      fibjax.storage.ResultFileError: a folder or file is missing or damaged, or arms of the
        sweep are in none of the folders.
    """
    if not shard_dirs:
        raise storage.ResultFileError("give the shard folders to merge")
    for folder in shard_dirs:
        if not Path(folder).is_dir() or not is_sweep(folder):
            raise storage.ResultFileError(f"{folder}: is not a fibjax sweep folder")
    loaded = [(Path(d), *load_saved(d)) for d in shard_dirs]
    first_dir, config, record, _ = loaded[0]
    arms: dict[str, dict[str, Any]] = {}
    for folder, other, other_record, saved in loaded:
        _check_same_sweep(first_dir, config, record, folder, other, other_record)
        for name, arrays in saved.items():
            if name in arms and not _same_arrays(arms[name], arrays):
                raise provenance.ProvenanceError(
                    f"{folder}: arm_{name}.npz differs from the same arm in another folder"
                )
            arms[name] = arrays
    _check_complete(config, arms, [r for _, _, r, _ in loaded])
    prepare_out_dir(out_dir, config, environment)
    merged = Path(out_dir) / SWEEP_FILE
    sweep = storage.read_json(merged)
    sweep["code"] = record["code"]
    if "code_changes" in record:
        sweep["code_changes"] = record["code_changes"]
    sweep["merged_from"] = [
        {
            "folder": str(folder),
            "shard": r["shard"] and list(r["shard"]),
            "environment": r["environment"],
        }
        for folder, _, r, _ in loaded
    ]
    storage.write_json(merged, sweep)
    for folder, _, _, saved in loaded:
        for name in saved:
            target = Path(out_dir) / f"arm_{name}.npz"
            if not target.exists():
                with storage.atomic_path(target) as tmp:
                    shutil.copyfile(Path(folder) / f"arm_{name}.npz", tmp)


def _check_same_sweep(first_dir, config, record, folder, other, other_record) -> None:
    difference = provenance.first_difference(config.to_dict(), other.to_dict())
    if difference is not None:
        field, want, got = difference
        raise provenance.ProvenanceError(
            f"{folder}: is a shard of another sweep ({field} is {got!r}, but {want!r} in"
            f" {first_dir}); merge only the shards of one sweep"
        )
    if run_codes(other_record) != run_codes(record):
        field, want, got = provenance.first_difference(record["code"], other_record["code"]) or (
            "code_changes",
            None,
            None,
        )
        raise provenance.ProvenanceError(
            f"{folder}: trained under other code than {first_dir} (code.{field} is {got!r}, not"
            f" {want!r}); merge only shards trained under the same code"
        )


def _same_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    skip = {"train_s"}
    keys = set(a) - skip
    return keys == set(b) - skip and all(np.array_equal(a[k], b[k], equal_nan=True) for k in keys)


def _check_complete(config: SweepConfig, arms: dict, records: list[dict[str, Any]]) -> None:
    missing = [arm for arm in config.arms() if arm.name not in arms]
    if not missing:
        return
    n = next((r["shard"][1] for r in records if r["shard"] is not None), None)
    parts = sorted(
        {k for k in range(1, (n or 0) + 1) for arm in shard_arms(config, (k, n)) if arm in missing}
    )
    where = f"; run or finish shard(s) {', '.join(f'{k}/{n}' for k in parts)}" if parts else ""
    raise storage.ResultFileError(
        f"{len(missing)} of the sweep's {len(config.arms())} arms are in none of the folders"
        f" (first: {missing[0].name}){where}"
    )


# ------------------------------------------------------------------------------ report


def build_report(out_dir: Path) -> dict[str, Any]:
    """Writes ``sweep.csv``, ``summary.json``, the figures and ``report.md`` from the saved
    arms of a finished sweep (:mod:`fibjax.sweep_report`); returns the summary.

    Raises:
      fibjax.storage.ResultFileError: an arm is missing, damaged or disagrees with the sweep.
    """
    from fibjax import sweep_report

    config, record, arms = load_all(out_dir)
    points = []
    for settings in config.points():
        attention, vanilla = point_mses(config, arms, settings)
        points.append(
            sweep_report.PointResult(settings, np.asarray(config.seeds), attention, vanilla)
        )
    return sweep_report.write_sweep_report(
        out_dir,
        points,
        alpha=config.alpha,
        stats_seed=config.stats_seed,
        rows_axis=config.rows,
        cols_axis=config.cols,
        description=describe(config, record, arms),
        code_text=code_text(arms),
        epochs=config.epochs,
    )


def describe(config: SweepConfig, record: dict[str, Any], arms: dict[str, dict[str, Any]]):
    """The JSON-ready description of a sweep that its summary keeps: configuration, code,
    environment, the shards it was merged from, and where its training time went."""
    seconds = {name: float(arm["train_s"]) for name, arm in arms.items() if "train_s" in arm}
    return {
        "format": SWEEP_FORMAT,
        "config": config.to_dict(),
        "varying_axes": config.varying_axes(),
        "n_points": len(config.points()),
        "n_arms": len(arms),
        "code": run_codes(record),
        "environment": record["environment"],
        "merged_from": record.get("merged_from"),
        "train_s": seconds,
    }


def code_text(arms: dict[str, dict[str, Any]]) -> str:
    """One sentence on the code that trained the arms; says so when it changed mid-sweep.

    >>> code = {"fibjax": "0.1.0", "source_digest": "ab" * 32, "jax": "0.10", "flax": "0.12"}
    >>> record = {"format": provenance.FORMAT, "config": {}, "code": code}
    >>> arm = {"provenance": provenance.to_array(record)}
    >>> code_text({"a": arm, "b": arm})
    'Trained with fibjax 0.1.0 (source abababababab), JAX 0.10, Flax 0.12.'
    """
    codes = [provenance.from_array(arm["provenance"], name)["code"] for name, arm in arms.items()]
    distinct = [code for i, code in enumerate(codes) if code not in codes[:i]]
    if len(distinct) == 1:
        return f"Trained with {provenance.code_line(distinct[0])}."
    texts = "; ".join(map(provenance.code_line, distinct))
    return (
        "**The code changed while this sweep was interrupted** (resumed with"
        f" --allow-version-change): arms were trained with {texts}."
    )
