"""What the commands share: usage errors, the parser, the option groups and their readers.

A mistake a user can make raises :class:`UsageError`: one line, exit status :data:`EXIT_USAGE`.
The functions after the option groups turn options into configurations and values, checked
without importing JAX.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake in the command line or its files: printed as one line, exit status 2."""


# Placeholders in help texts, filled from the registry of models only when help is shown:
# importing it imports JAX, which every other use of the parser puts off.
CELLS, DEFAULT_CELL = "<cells>", "<default cell>"
MODELS, DEFAULT_MODEL = "<models>", "<default model>"
BASELINE, DEFAULT_MODELS = "<baseline>", "<default models>"


def _registry_words() -> dict[str, str]:
    from fibjax import models

    return {
        CELLS: ", ".join(models.CELL_NAMES),
        DEFAULT_CELL: models.DEFAULT_CELL,
        MODELS: ", ".join(models.MODEL_NAMES),
        DEFAULT_MODEL: models.NOTEBOOK_MODELS[0],
        BASELINE: models.BASELINE,
        DEFAULT_MODELS: ",".join(models.NOTEBOOK_MODELS),
    }


class Parser(argparse.ArgumentParser):
    """The parser of every command: a mistake raises :class:`UsageError`; help texts name the
    registered cells and models."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # argparse takes "-1e-3" (or a list "-1e-3,1e-2") for an option, its pattern of negative
        # numbers having no exponent, and says "expected one argument"; as a value, the option's
        # own check says why it is refused. No option of fibjax looks like a number.
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(,\S*)?$")

    def error(self, message: str) -> None:  # one line instead of usage + message
        raise UsageError(message)

    def format_help(self) -> str:
        text = super().format_help()
        if "<" in text:
            for placeholder, words in _registry_words().items():
                text = text.replace(placeholder, words)
        return text


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Options of the data set, on every command that trains."""
    group = parser.add_argument_group("data")
    group.add_argument("--n-terms", type=int, default=1200, help="Fibonacci terms (1200)")
    group.add_argument("--window", type=int, default=20, help="terms per input window (20)")
    group.add_argument(
        "--train-fraction", type=float, default=0.7, help="share of windows for training (0.7)"
    )
    group.add_argument(
        "--scaling", default="minmax", help='"minmax" (the notebook\'s) or "log" (minmax)'
    )


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Options of the training protocol, on every command that trains."""
    group = parser.add_argument_group("training")
    group.add_argument("--cell", default=None, help=f"the recurrent cell: {CELLS} ({DEFAULT_CELL})")
    group.add_argument("--hidden", type=int, default=2, help="hidden units of the cell (2)")
    group.add_argument("--epochs", type=int, default=30, help="epochs (30)")
    group.add_argument("--batch-size", type=int, default=1, help="windows per update (1)")
    group.add_argument("--learning-rate", type=float, default=1e-3, help="step size (0.001)")
    group.add_argument(
        "--optimizer", default="keras_adam", help="keras_adam (default), adam, adamw, sgd, rmsprop"
    )


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """Options of the JAX runtime: compilation cache and CPU devices."""
    group = parser.add_argument_group("runtime")
    group.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache of compiled programs, traced ones in its programs/ folder"
        " (default $FIBJAX_CACHE_DIR or ~/.cache/fibjax/jax)",
    )
    group.add_argument(
        "--no-cache",
        action="store_true",
        help="do not read or write the caches of compiled and traced programs",
    )
    group.add_argument(
        "--cpu-devices",
        type=int,
        default=None,
        help="CPU devices to shard seeds over (the cores this process may run on)",
    )


def add_distributed_options(parser: argparse.ArgumentParser) -> None:
    """Options of a run across processes and hosts (``jax.distributed``)."""
    group = parser.add_argument_group(
        "across processes (jax.distributed; each option may be given as FIBJAX_<NAME>)"
    )
    group.add_argument(
        "--distributed",
        choices=("auto", "off"),
        default=None,
        help="auto: join the processes that Slurm, Open MPI or a TPU pod started (off)",
    )
    group.add_argument(
        "--coordinator", default=None, metavar="HOST:PORT", help="where process 0 listens"
    )
    group.add_argument("--num-processes", type=int, default=None, help="processes in the run")
    group.add_argument("--process-id", type=int, default=None, help="this process, from 0")
    group.add_argument(
        "--join-timeout", type=int, default=None, help="seconds to wait for every process (300)"
    )
    group.add_argument(
        "--heartbeat-timeout",
        type=int,
        default=None,
        help="seconds of silence after which a process counts as lost and the others stop (100)",
    )


def distributed_config(args: argparse.Namespace):
    """The :class:`fibjax.cluster.distributed.DistributedConfig` of the options and ``FIBJAX_*``."""
    from fibjax.cluster import distributed

    try:
        return distributed.from_options({name: getattr(args, name) for name in distributed.ENV})
    except ValueError as error:
        raise UsageError(str(error)) from None


def data_config_from(args: argparse.Namespace):
    """The validated :class:`fibjax.data.DataConfig` of the data options."""
    from fibjax.data import DataConfig

    return DataConfig(
        n_terms=args.n_terms,
        window=args.window,
        train_fraction=args.train_fraction,
        scaling=args.scaling,
    )


def training_options(args: argparse.Namespace) -> dict[str, object]:
    """The training options (:func:`add_training_options`) by field name of the configs; the
    cell only when given, else the configs' default."""
    names = ("hidden", "epochs", "batch_size", "learning_rate", "optimizer")
    options = {name: getattr(args, name) for name in names}
    if args.cell is not None:
        options["cell"] = args.cell
    return options


def given_options(argv: Sequence[str], add_command: Callable[[Any], None]) -> set[str]:
    """The destinations of the options that ``argv`` gives explicitly (not by default).

    ``add_command(commands)`` adds the command that ``argv`` runs to a parser's sub-commands.
    """
    parser = Parser(prog="fibjax")
    add_command(parser.add_subparsers(dest="command", required=True, parser_class=Parser))
    unset = object()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for sub in subparsers.choices.values():
        for action in sub._actions:
            if action.dest not in ("help", "handler"):
                action.default = unset
    args = parser.parse_args(argv)
    return {name for name, value in vars(args).items() if value is not unset}


def option(name: str) -> str:
    """The option of a destination: ``seed_list`` is ``--seed-list``."""
    return "--" + name.replace("_", "-")


# Seeds from which a command says what it prepares before JAX starts (importing JAX and checking
# the seeds and folder take a second or two before the first phase).
LARGE_RUN = 10_000
# Values in a data set's windows from which building it is said first (a second or more of NumPy).
LARGE_DATA = 10_000_000


def say_large_data(data_config) -> None:
    """One line on stderr before a large data set is built: it takes seconds to minutes."""
    n_train, n_test = data_config.split_sizes
    if (n_train + n_test) * data_config.window >= LARGE_DATA:
        print(
            f"building {n_train + n_test:,} windows of {data_config.window} terms ...",
            file=sys.stderr,
            flush=True,
        )


def seed_list(args: argparse.Namespace) -> tuple[int, ...]:
    """The seeds the options give: ``--seed-list``'s, else 0..N-1 of ``--seeds``."""
    if args.seed_list is None:
        return tuple(range(seed_count(args)))
    try:
        return tuple(int(part) for part in args.seed_list.split(","))
    except ValueError:
        raise UsageError(
            f"--seed-list={args.seed_list!r} must be comma-separated integers"
        ) from None


def seed_count(args: argparse.Namespace) -> int:
    """How many seeds the options give, checked without building them (or importing JAX)."""
    if args.seed_list is not None:
        return len(args.seed_list.split(","))
    if not 1 <= args.seeds <= 2**32:  # fibjax.training.config.MAX_SEED + 1
        raise UsageError(f"--seeds={args.seeds} must be an integer from 1 to {2**32}")
    return args.seeds


# The record file of each study, and the command that resumes it.
STUDY_FILES = {"comparison": ("run.json", "compare"), "sweep": ("sweep.json", "sweep")}


def not_resumable(folder: Path, study: str) -> str:
    """Why ``--resume folder`` cannot resume a ``study`` whose record file it lacks, and what to
    do instead: resume the other study it holds, or start again in it if it is empty."""
    for other, (file, command) in STUDY_FILES.items():
        if other != study and (Path(folder) / file).exists():
            return (
                f"--resume {folder}: holds a fibjax {other}, not a {study}; resume it with"
                f" fibjax {command} --resume {folder}"
            )
    record, command = STUDY_FILES[study]
    if any(Path(folder).iterdir()):
        return (
            f"--resume {folder}: holds no {record} and is not a fibjax {study}; give a {study}'s"
            f" folder, or start a new {study} with --out and a new or empty folder"
        )
    return (
        f"--resume {folder}: holds no {record}; the {study} was stopped before it began: start"
        f" it again with fibjax {command} --out {folder} and its options"
    )


def model_list(text: str) -> tuple[str, ...]:
    """``--models a,b,c`` as names, spaces around them allowed."""
    return tuple(part.strip() for part in text.split(","))


def os_error_text(error: OSError) -> str:
    """An operating system's error in a few words, then the file it names if any."""
    where = f": {error.filename}" if error.filename else ""
    return f"{error.strerror or error}{where}"
