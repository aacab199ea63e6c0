"""The main experiment: two or more models trained under the same seeds, saved as each finishes.

A comparison has one arm per model, all of one recurrent cell under the same seeds (paired: same
initial recurrent and output weights and same order of windows for a seed). Every attention form
among them is compared with the baseline (:data:`fibjax.models.BASELINE`, the last state pooled).
In A/A mode both arms are one model on disjoint seeds, to show the statistics find no difference
that is not there. Each arm is saved to ``arm_<label>.npz`` as soon as it finishes, so an
interrupted run resumes without training it again;
:func:`fibjax.reports.compare_report.build_report` then writes the tables, figures and report from
the saved files alone.
"""

from __future__ import annotations

import dataclasses
import numbers
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import jax
import numpy as np
from flax.traverse_util import flatten_dict

from fibjax.cluster.distributed import Peers
from fibjax.data import DataConfig, FibonacciData, windows_from_config
from fibjax.models import (
    BASELINE,
    DEFAULT_CELL,
    MODEL_NAMES,
    NOTEBOOK_MODELS,
    POOLINGS,
    attention_weights,
    cell_entry,
    predict,
)
from fibjax.results import provenance, storage
from fibjax.studies.compiles import CompilesAhead, compile_workers
from fibjax.training import runtime
from fibjax.training.config import TrainConfig, check_seeds
from fibjax.training.seeds import CompiledSeeds, compile_seeds

RUN_FILE = "run.json"
RUN_FORMAT = "fibjax-comparison/1"
ARM_ARRAYS = ("seeds", "test_mse", "train_mse", "epoch_losses", "diverged_epoch", "test_pred")


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """A comparison's full specification; validated when built.

    Attributes:
      seeds: the seeds of the paired design (in A/A mode, of the first arm).
      data: the data set.
      cell: the recurrent cell of every arm, a name from :data:`fibjax.models.CELLS`.
      models: the poolings compared, names from :data:`fibjax.models.POOLINGS`: two or more,
        the baseline among them; each other one is compared with the baseline.
      hidden, epochs, batch_size, learning_rate, optimizer: the training protocol of every arm.
      alpha: significance level of the primary test.
      aa: A/A mode: ``aa_model`` against itself, the second arm on the next ``len(seeds)``
        seeds after the largest seed.
      aa_model: the model of both arms in A/A mode.
      stats_seed: seed of every resampling in the statistics.
    """

    seeds: tuple[int, ...] = tuple(range(64))
    data: DataConfig = DataConfig()
    cell: str = DEFAULT_CELL
    models: tuple[str, ...] = NOTEBOOK_MODELS
    hidden: int = 2
    epochs: int = 30
    batch_size: int = 1
    learning_rate: float = 1e-3
    optimizer: str = "keras_adam"
    alpha: float = 0.05
    aa: bool = False
    aa_model: str = BASELINE
    stats_seed: int = 0

    # Fields that change the analysis, not the trained numbers: left out of the arms' provenance,
    # so a finished comparison is analysed again without training (``fibjax report --alpha``).
    ANALYSIS: ClassVar[tuple[str, ...]] = ("alpha", "stats_seed")

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", check_seeds(self.seeds))
        if not isinstance(self.data, DataConfig):
            raise ValueError(f"data={self.data!r} must be a DataConfig")
        alpha = self.alpha
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
            raise ValueError(f"alpha={self.alpha!r} must be a number strictly between 0 and 1")
        object.__setattr__(self, "alpha", float(alpha))
        if not isinstance(self.aa, bool):
            raise ValueError(f"aa={self.aa!r} must be True or False")
        seed = self.stats_seed
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"stats_seed={self.stats_seed!r} must be an integer >= 0")
        object.__setattr__(self, "stats_seed", int(seed))
        # The protocol's numbers as the TrainConfig holds them (NumPy numbers made Python ones).
        cell_entry(self.cell)
        protocol = self.train_config(BASELINE)
        for name in ("hidden", "epochs", "batch_size", "learning_rate"):
            object.__setattr__(self, name, getattr(protocol, name))
        object.__setattr__(self, "models", self._checked_models())
        if self.aa_model not in MODEL_NAMES:
            raise ValueError(f"aa_model={self.aa_model!r} is unknown; choose one of {MODEL_NAMES}")
        if self.aa:
            check_seeds(self.seeds + self.aa_second_seeds())

    def _checked_models(self) -> tuple[str, ...]:
        models = self.models
        if isinstance(models, str) or not isinstance(models, (tuple, list)):
            raise ValueError(f"models={models!r} must be a sequence of model names")
        models = tuple(models)
        for model in models:
            if model not in MODEL_NAMES:
                raise ValueError(
                    f"model {model!r} is unknown; choose from {', '.join(MODEL_NAMES)}"
                )
        if len(set(models)) != len(models) or len(models) < 2:
            raise ValueError(f"models={','.join(models)} must name two or more different models")
        if BASELINE not in models and not self.aa:
            raise ValueError(
                f"models={','.join(models)} must include {BASELINE}, the model every other one"
                " is compared with"
            )
        return models

    def train_config(self, model: str) -> TrainConfig:
        """The :class:`TrainConfig` of one model under this protocol."""
        return TrainConfig(
            model=model,
            cell=self.cell,
            hidden=self.hidden,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            optimizer=self.optimizer,
        )

    def aa_second_seeds(self) -> tuple[int, ...]:
        """The A/A mode's second arm: as many seeds again, after the largest."""
        start = max(self.seeds) + 1
        return tuple(range(start, start + len(self.seeds)))

    def arms(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """``(label, model, seeds)`` of each arm: the candidates in the order given, then the
        baseline.

        >>> [label for label, _, _ in CompareConfig(models=("vanilla", "dot", "additive")).arms()]
        ['dot', 'additive', 'vanilla']
        """
        if self.aa:
            model = self.aa_model
            return [
                (f"{model}-A", model, self.seeds),
                (f"{model}-B", model, self.aa_second_seeds()),
            ]
        labels = [*self.candidates(), self.baseline()]
        return [(label, label, self.seeds) for label in labels]

    def candidates(self) -> list[str]:
        """The labels of the arms each compared with :meth:`baseline`, in the order given."""
        if self.aa:
            return [f"{self.aa_model}-A"]
        return [model for model in self.models if model != BASELINE]

    def baseline(self) -> str:
        """The label of the arm every candidate is compared with."""
        return f"{self.aa_model}-B" if self.aa else BASELINE

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record from which :func:`config_from_dict` rebuilds this config."""
        record = dataclasses.asdict(self)
        record["seeds"] = list(self.seeds)
        record["models"] = list(self.models)
        return record


def config_from_dict(record: dict[str, Any]) -> CompareConfig:
    """Rebuilds a :class:`CompareConfig` from :meth:`CompareConfig.to_dict` (validated again)."""
    try:
        fields = dict(record)
        fields["data"] = DataConfig(**fields["data"])
        fields["seeds"] = tuple(fields["seeds"])
        if isinstance(fields.get("models"), list):
            fields["models"] = tuple(fields["models"])
        return CompareConfig(**fields)
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a fibjax comparison configuration ({error})") from None


def arm_path(out_dir: Path, label: str) -> Path:
    return Path(out_dir) / f"arm_{label}.npz"


def train_arm(
    config: CompareConfig,
    data: FibonacciData,
    label: str,
    model: str,
    seeds: tuple[int, ...],
    run: CompiledSeeds,
    compile_s: float,
    progress: Any = None,
    on_training: Callable[[str], None] | None = None,
) -> dict[str, np.ndarray]:
    """Trains one arm under all its seeds with its compiled program ``run``; returns what is
    saved of it (``compile_s``, the seconds ``run`` took to compile, among it).

    ``on_training`` is called with the label once the training is dispatched.
    """
    train_config = config.train_config(model)
    if progress is not None:
        on = runtime.devices_in_words(run.devices)
        progress.phase(f"training {label} ({len(seeds)} seeds, {config.epochs} epochs, on {on})")
    start = time.perf_counter()
    result = run()
    if on_training is not None:
        on_training(label)
    result = jax.block_until_ready(result)
    train_s = time.perf_counter() - start
    arrays = {
        "provenance": provenance.to_array(
            {
                **provenance.build(train_config, config.data, seeds),
                "config": expected_config(config, model, seeds),
            }
        ),
        "seeds": np.asarray(seeds, np.int64),
        "model": np.asarray(model),
        "test_mse": np.asarray(result.test_mse),
        "train_mse": np.asarray(result.train_mse),
        "epoch_losses": np.asarray(result.epoch_losses),
        "diverged_epoch": np.asarray(result.diverged_epoch),
        "compile_s": np.asarray(compile_s),
        "train_s": np.asarray(train_s),
        **flatten_dict({"params": result.params}, sep="/"),
    }
    arrays.update(_test_outputs(model, config.cell, result.params, data))
    return arrays


def _test_outputs(model: str, cell: str, params: Any, data: FibonacciData) -> dict[str, np.ndarray]:
    """Each seed's test predictions and, for an attention model, its α on every test window."""
    x = np.asarray(data.test_x, np.float32)
    # Jitted, so that the compilation cache keeps these programs for the next run too.
    pred = jax.jit(jax.vmap(lambda p: predict(model, p, x, cell=cell)))(params)
    outputs = {"test_pred": np.asarray(pred)}
    if POOLINGS[model].has_attention:
        alpha = jax.jit(jax.vmap(lambda p: attention_weights(p, x, model=model, cell=cell)))(params)
        outputs["test_alpha"] = np.asarray(alpha)
    return outputs


def prepare_out_dir(out_dir: Path, config: CompareConfig, environment: dict[str, Any]) -> None:
    """Creates ``out_dir`` for a new run, refusing a folder that holds anything already."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir}: exists and is not a folder")
    if out_dir.is_dir():
        storage.remove_stale_temporaries(out_dir)  # of a run killed while it wrote
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if _unstarted_run(out_dir):
            pass  # a run killed while it wrote run.json, before any training: start it again
        elif (out_dir / RUN_FILE).exists():
            raise ValueError(
                f"--out {out_dir}: already holds a fibjax comparison; continue it with"
                f" --resume {out_dir}, or choose another folder"
            )
        else:
            raise ValueError(f"--out {out_dir}: exists, is not empty and is not a fibjax result")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "format": RUN_FORMAT,
            "config": config.to_dict(),
            "code": provenance.code_record(),
            "environment": environment,
        }
        storage.write_json(out_dir / RUN_FILE, record)
    except OSError as error:
        raise ValueError(f"--out {out_dir}: cannot be written ({error.strerror})") from None


def _unstarted_run(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds nothing but a ``run.json`` that cannot be read."""
    if [p.name for p in out_dir.iterdir()] != [RUN_FILE]:
        return False
    try:
        load_run(out_dir)
    except storage.ResultFileError:
        return True
    return False


def load_run(out_dir: Path) -> tuple[CompareConfig, dict[str, Any]]:
    """The configuration of a run folder and the whole record of its ``run.json``.

    The record holds ``code`` (:func:`fibjax.results.provenance.code_record` when the run began),
    ``environment`` and, after a resume with ``allow_version_change``, ``code_changes``: the
    code records that later parts of the run were trained under.
    """
    path = Path(out_dir) / RUN_FILE
    record = storage.read_json(path, required=("format", "config", "code", "environment"))
    if record["format"] != RUN_FORMAT:
        raise storage.ResultFileError(f"{path}: format {record['format']!r} is not {RUN_FORMAT!r}")
    codes = [record["code"], *record.get("code_changes", [])]
    if not isinstance(record.get("code_changes", []), list) or not all(
        isinstance(code, dict) for code in codes
    ):
        raise storage.ResultFileError(f"{path}: code and code_changes must be JSON objects")
    if not isinstance(record["environment"], dict):
        raise storage.ResultFileError(f"{path}: environment must be a JSON object")
    try:
        return config_from_dict(record["config"]), record
    except ValueError as error:
        raise storage.ResultFileError(f"{path}: {error}") from None


def run_codes(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The code records a run's arms may have been trained under (see :func:`load_run`)."""
    return [record["code"], *record.get("code_changes", [])]


def expected_config(config: CompareConfig, model: str, seeds: tuple[int, ...]) -> dict[str, Any]:
    """The provenance ``config`` part that an arm of ``config`` must carry.

    Besides the arm's own training, data and seeds, it holds the whole comparison's
    configuration (``run``, less the seeds): an arm belongs to one comparison only.
    """
    record = provenance.config_record(config.train_config(model), config.data, seeds)
    record["run"] = provenance.run_fields(config)
    return record


def load_arm(
    out_dir: Path,
    config: CompareConfig,
    record: dict[str, Any],
    label: str,
    model: str,
    seeds: tuple[int, ...],
) -> dict[str, Any]:
    """A saved arm, checked against the run's configuration and code (:func:`load_run`).

    Raises:
      fibjax.results.provenance.ProvenanceError: the arm was trained under another configuration, or
        under code that the run did not allow; the message names the file and the field.
    """
    path = arm_path(out_dir, label)
    run_file = Path(out_dir) / RUN_FILE
    arrays = storage.read_npz(path, required=ARM_ARRAYS)
    if "provenance" not in arrays:
        raise provenance.ProvenanceError(
            f"{path}: records no provenance (saved by an older fibjax); delete it, and"
            " --resume trains it again"
        )
    provenance.check_saved(
        arrays["provenance"],
        expected_config(config, model, seeds),
        run_codes(record),
        str(run_file),
        str(path),
        analysis={"run": config.ANALYSIS},
    )
    if tuple(arrays["seeds"].tolist()) != tuple(seeds) or str(arrays.get("model")) != model:
        raise storage.ResultFileError(f"{path}: its seeds or model differ from {RUN_FILE}")
    n = len(seeds)
    for name in ARM_ARRAYS:
        if arrays[name].shape[:1] != (n,):
            raise storage.ResultFileError(f"{path}: {name} has shape {arrays[name].shape}")
    return arrays


def arm_code(arm: dict[str, Any]) -> dict[str, Any]:
    """The code record an arm (from :func:`load_arm` or :func:`train_arm`) was trained under."""
    return provenance.from_array(arm["provenance"], "arm")["code"]


def open_for_resume(
    out_dir: Path, allow_version_change: bool = False
) -> tuple[CompareConfig, dict[str, Any], dict[str, dict[str, Any]]]:
    """Checks a run folder before any training; returns its config, record and saved arms.

    Every saved arm must agree with ``run.json``. When the code now differs from the code the
    run was trained under, resuming is refused unless ``allow_version_change``; then the
    change is added to ``run.json`` (``code_changes``), and the report says so.
    """
    config, record = load_run(out_dir)
    labels = {label for label, _, _ in config.arms()}
    for path in sorted(Path(out_dir).glob("arm_*.npz")):
        if path.name[len("arm_") : -len(".npz")] not in labels:
            raise provenance.ProvenanceError(
                f"{path}: is not an arm of the configuration in {RUN_FILE} (its arms are"
                f" {', '.join(sorted(labels))})"
            )
    saved = {}
    for label, model, seeds in config.arms():
        if arm_path(out_dir, label).exists():
            saved[label] = load_arm(out_dir, config, record, label, model, seeds)
    if len(saved) == len(config.arms()):
        return config, record, saved
    run_file = Path(out_dir) / RUN_FILE
    now = provenance.admit_code(run_codes(record), str(run_file), allow_version_change, "run")
    if now is None:
        return config, record, saved
    record["code_changes"] = [*record.get("code_changes", []), now]
    storage.write_json(run_file, record)
    return config, record, saved


def run_comparison(
    out_dir: Path,
    *,
    progress: Any = None,
    on_saved: Callable[[str], None] | None = None,
    program_cache: Path | None = None,
    on_training: Callable[[str], None] | None = None,
    allow_version_change: bool = False,
    peers: Peers | None = None,
) -> dict[str, dict[str, Any]]:
    """Trains every arm of the run in ``out_dir`` that is not saved yet, saving each at once.

    In a run across processes (``peers``), process 0 reads the folder and says what is left to
    train; every process trains it, with the seeds sharded over all their devices, and process
    0 alone saves.

    Args:
      out_dir: a folder made by :func:`prepare_out_dir` (or an interrupted run's folder).
      progress: a :class:`fibjax.training.progress.Progress`, or ``None``.
      on_saved: called with each arm's label once it is saved.
      program_cache: where traced training programs are kept between runs, or ``None``.
      on_training: called with an arm's label once its training is dispatched: the devices then
        work while this process only waits.
      allow_version_change: resume under other code than the run began with
        (:func:`open_for_resume`).
      peers: this process among those of a distributed run (default: the only one).

    Returns:
      Every arm's arrays by label (on process 0; nothing on the others).
    """
    peers = Peers() if peers is None else peers
    arms: dict[str, dict[str, Any]] = {}

    def plan() -> dict[str, Any]:
        config, _, saved = open_for_resume(out_dir, allow_version_change)
        arms.update(saved)
        todo = [label for label, _, _ in config.arms() if label not in saved]
        return {"config": config.to_dict(), "todo": todo}

    decided = peers.decide(plan, (storage.ResultFileError,))
    config = config_from_dict(decided["config"])
    data = windows_from_config(config.data)
    todo = [arm for arm in config.arms() if arm[0] in decided["todo"]]

    def compile_arm(index: int) -> CompiledSeeds:
        _, model, seeds = todo[index]
        # No per-epoch host callback: JAX does not cache programs that hold one, and a second
        # run should not compile again. The progress line shows the elapsed time instead.
        return compile_seeds(
            config.train_config(model),
            data,
            seeds,
            program_cache=program_cache,
            initials_along=[model for _, model, _ in config.arms()],
        )

    workers = compile_workers(len(todo), peers)
    with CompilesAhead(compile_arm, len(todo), workers) as programs:
        for index, (label, model, seeds) in enumerate(todo):
            what = f"compiling {label} ({len(seeds)} seeds)"
            run, compile_s = programs.get(index, progress, what)
            trained = train_arm(
                config, data, label, model, seeds, run, compile_s, progress, on_training
            )
            if not peers.main:
                continue  # process 0 keeps the results
            arms[label] = trained
            storage.write_npz(arm_path(out_dir, label), arms[label])
            if on_saved is not None:
                on_saved(label)
    return arms
