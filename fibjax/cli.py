"""The ``fibjax`` command line: ``train``, ``compare``, ``report``, ``plot``, ``sweep``, ``merge``.

Mistakes a user can make (a bad option, a bad file) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import io
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake in the command line or its files: printed as one line, exit status 2."""


# Placeholders in help texts, filled from the registry of models only when help is shown:
# importing it imports JAX, which every other use of the parser puts off.
_CELLS, _DEFAULT_CELL = "<cells>", "<default cell>"
_MODELS, _DEFAULT_MODEL = "<models>", "<default model>"
_BASELINE, _DEFAULT_MODELS = "<baseline>", "<default models>"


def _registry_words() -> dict[str, str]:
    from fibjax import models

    return {
        _CELLS: ", ".join(models.CELL_NAMES),
        _DEFAULT_CELL: models.DEFAULT_CELL,
        _MODELS: ", ".join(models.MODEL_NAMES),
        _DEFAULT_MODEL: models.NOTEBOOK_MODELS[0],
        _BASELINE: models.BASELINE,
        _DEFAULT_MODELS: ",".join(models.NOTEBOOK_MODELS),
    }


class _Parser(argparse.ArgumentParser):
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
    group.add_argument(
        "--cell", default=None, help=f"the recurrent cell: {_CELLS} ({_DEFAULT_CELL})"
    )
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
        "--cpu-devices", type=int, default=None, help="CPU devices to shard seeds over (cores)"
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
    """The :class:`fibjax.distributed.DistributedConfig` of the options and ``FIBJAX_*``."""
    from fibjax import distributed

    try:
        return distributed.from_options({name: getattr(args, name) for name in distributed.ENV})
    except ValueError as error:
        raise UsageError(str(error)) from None


def supervised(args: argparse.Namespace, config, default_out: Path) -> int:
    """Runs this command again as a worker child (:mod:`fibjax.supervisor`); its status."""
    from fibjax import distributed, supervisor

    try:
        distributed.check_reachable(config)  # in one line here, before a worker starts
    except ValueError as error:
        raise UsageError(str(error)) from None
    argv = list(args.argv)
    out_dir = args.resume or args.out
    if out_dir is None:  # process 0's folder, named once, here
        out_dir = default_out
        argv += ["--out", str(out_dir)]
    if config.process_id is None:
        process = "this process"
    else:
        process = f"process {config.process_id} of {config.num_processes}"
    resume = f"fibjax {args.command} --resume {out_dir} (with the same distributed options)"
    return supervisor.supervise(argv, process, out_dir, resume)


def run_across(
    args: argparse.Namespace,
    config,
    prepare: Callable[[], Path],
    train: Callable[[Path, Any], int],
) -> int:
    """Runs a command as one process of several; the status of this process.

    Joins the others; process 0 runs ``prepare()`` (checks, the run folder), whose folder
    every process gets; every process runs ``train(out_dir, peers)``; the processes other than
    0 then wait for it and say where it wrote.
    """
    from fibjax import distributed

    configure_runtime(args, config)
    peers = distributed.Peers.of_jax()
    try:
        out_dir = Path(peers.decide(lambda: str(prepare()), (UsageError, OSError)))
    except distributed.PeerError as error:
        raise UsageError(str(error)) from None
    status = while_joined(config, lambda: train(out_dir, peers))
    return status if peers.main or status else share_done(peers, out_dir)


def while_joined(config, work: Callable[[], int]) -> int:
    """Runs ``work()`` of a process joined to others; a lost process ends it with one line.

    When another process is lost, a collective with it fails here first (Gloo: connection
    closed). JAX's runtime then ends this process within the heartbeat timeout, and
    :mod:`fibjax.supervisor` names the lost process; this waits for that, and says what it
    knows if the runtime does not come.
    """
    import jax

    try:
        return work()
    except jax.errors.JaxRuntimeError as error:
        time.sleep(config.heartbeat_timeout + 10)
        first = (str(error).strip().splitlines() or ["?"])[0]
        print(f"fibjax: error: lost contact with another process: {first}", file=sys.stderr)
        return 1


def share_done(peers, out_dir: Path) -> int:
    """The end of a process other than 0: wait for process 0, then say where it wrote."""
    peers.finish()
    print(
        f"process {peers.index} of {peers.count}: trained its share of the seeds; process 0"
        f" wrote the results to {out_dir}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = _Parser(prog="fibjax", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train one model under one seed, as the notebook")
    train.add_argument(
        "--model", default=None, help=f"the pooling after the cell: {_MODELS} ({_DEFAULT_MODEL})"
    )
    train.add_argument("--seed", type=int, default=0, help="PRNG seed (0)")
    add_data_options(train)
    add_training_options(train)
    add_runtime_options(train)
    train.set_defaults(handler=_run_train)

    compare = commands.add_parser(
        "compare",
        help="the main experiment: two or more models of one cell under the same seeds, with a"
        " report",
    )
    add_compare_options(compare)
    add_distributed_options(compare)
    compare.set_defaults(handler=run_compare)

    report = commands.add_parser("report", help="rebuild a finished comparison's or sweep's report")
    report.add_argument("dir", type=Path, help="the comparison's or sweep's output folder")
    report.set_defaults(handler=_run_report)

    plot = commands.add_parser("plot", help="redraw a finished comparison's or sweep's figures")
    plot.add_argument("dir", type=Path, help="the comparison's output folder")
    plot.set_defaults(handler=_run_plot)

    from fibjax import sweep_cli  # its own module: the sweep's options are many

    sweep_cli.add_sweep_parser(commands)
    return parser


def add_compare_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``fibjax compare`` and ``experiments/compare_attention.py``."""
    group = parser.add_argument_group("comparison")
    seeds = group.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=64, help="seeds 0..N-1 (64)")
    seeds.add_argument("--seed-list", default=None, help="comma-separated seeds, e.g. 3,7,11")
    group.add_argument("--alpha", type=float, default=0.05, help="level of the primary test")
    group.add_argument(
        "--aa", action="store_true", help="A/A: one model against itself on disjoint seeds"
    )
    group.add_argument(
        "--models",
        default=None,
        help=f"two or more of {_MODELS}, comma-separated, {_BASELINE} among them: each other"
        f" one is compared with {_BASELINE} ({_DEFAULT_MODELS})",
    )
    group.add_argument("--aa-model", default=None, help=f"the model of the A/A mode ({_BASELINE})")
    group.add_argument(
        "--out", type=Path, default=None, help="output folder (default results/<timestamp>)"
    )
    group.add_argument(
        "--resume",
        type=Path,
        default=None,
        help="continue an interrupted comparison's folder, with its saved configuration",
    )
    group.add_argument(
        "--allow-version-change",
        action="store_true",
        help="let --resume train under other fibjax, JAX or Flax code than the run began with"
        " (the report says so)",
    )
    add_data_options(parser)
    add_training_options(parser)
    add_runtime_options(parser)


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


def train_config_from(args: argparse.Namespace):
    """The validated :class:`fibjax.train.TrainConfig` of ``fibjax train``'s options."""
    from fibjax.models import NOTEBOOK_MODELS
    from fibjax.train import TrainConfig

    model = NOTEBOOK_MODELS[0] if args.model is None else args.model
    return TrainConfig(model=model, **training_options(args))


def configure_runtime(args: argparse.Namespace, distributed=None) -> Path | None:
    """Applies the runtime options; must run before the first JAX computation.

    With ``distributed`` (a :class:`fibjax.distributed.DistributedConfig`), this process also
    joins the others.

    Returns:
      The folder for traced training programs (``programs`` in the cache folder), or ``None``
      when caching is off or the run spans processes (each traces its own).
    """
    from fibjax import runtime

    if args.cpu_devices is not None and args.cpu_devices < 1:
        raise UsageError(f"--cpu-devices={args.cpu_devices} must be an integer >= 1")
    cache_dir = None if args.no_cache else (args.cache_dir or runtime.default_cache_dir())
    try:
        runtime.configure(
            cache_dir=cache_dir, cpu_devices=args.cpu_devices, distributed=distributed
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise UsageError(
            f"cache folder {cache_dir}: cannot be created ({error.strerror or error});"
            " give another with --cache-dir or FIBJAX_CACHE_DIR, or run with --no-cache"
        ) from None
    if cache_dir is None or (distributed is not None and distributed.enabled):
        return None
    programs = Path(cache_dir) / "programs"
    from fibjax import storage

    storage.remove_stale_temporaries(programs)  # of runs killed while they saved a program
    return programs


def _run_train(args: argparse.Namespace) -> int:
    try:
        data_config = data_config_from(args)
        config = train_config_from(args)
        from fibjax.train import check_seeds

        (seed,) = check_seeds([args.seed])
    except ValueError as error:
        raise UsageError(str(error)) from None
    configure_runtime(args)

    import jax

    from fibjax.data import windows_from_config
    from fibjax.models import count_params
    from fibjax.progress import Progress
    from fibjax.train import check_memory, compile_program, make_train

    data = windows_from_config(data_config)
    try:
        check_memory(config, data, 1, jax.local_devices()[:1])
    except ValueError as error:
        raise UsageError(str(error)) from None
    with Progress() as progress:
        progress.phase(f"compiling {config.model} ({config.cell})")
        train = make_train(config, data)  # no host callback, so the program can be cached
        key = jax.random.key(seed)
        compiled = compile_program(jax.jit(train).lower(key), jax.default_backend())
        progress.phase(f"training {config.model} ({config.epochs} epochs)")
        start = time.perf_counter()
        result = jax.block_until_ready(compiled(key))
        seconds = time.perf_counter() - start
    _print_fit(config, seed, result, count_params(result.params), seconds)
    return 0


def _print_fit(config, seed: int, result, n_params: int, seconds: float) -> None:
    from fibjax.models import describe_model

    layers = describe_model(config.model, config.cell, config.hidden)
    print(f"Model: {config.model} ({layers}), {n_params} parameters, seed {seed}")
    for epoch, loss in enumerate(result.epoch_losses.tolist(), start=1):
        print(f"Epoch {epoch}/{config.epochs} - loss: {loss:.4e}")
    if int(result.diverged_epoch):
        print(f"Diverged: loss or weights not finite after epoch {int(result.diverged_epoch)}")
    print(f"Train set MSE = {float(result.train_mse):.6e}")
    print(f"Test set MSE = {float(result.test_mse):.6e}")
    print(f"({config.epochs} epochs in {seconds:.2f} s)")


def _seed_list(args: argparse.Namespace) -> tuple[int, ...]:
    if args.seed_list is None:
        return tuple(range(_seed_count(args)))
    try:
        return tuple(int(part) for part in args.seed_list.split(","))
    except ValueError:
        raise UsageError(
            f"--seed-list={args.seed_list!r} must be comma-separated integers"
        ) from None


def compare_config_from(args: argparse.Namespace, seeds: tuple[int, ...] | None = None):
    """The validated :class:`fibjax.compare.CompareConfig` of the command line.

    ``seeds`` replaces the seed options (to check the others before building many seeds).
    """
    from fibjax.compare import CompareConfig

    chosen = {}
    if args.models is not None:
        chosen["models"] = _model_list(args.models)
    if args.aa_model is not None:
        chosen["aa_model"] = args.aa_model
    try:
        return CompareConfig(
            seeds=_seed_list(args) if seeds is None else seeds,
            data=data_config_from(args),
            **training_options(args),
            **chosen,
            alpha=args.alpha,
            aa=args.aa,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None


def _model_list(text: str) -> tuple[str, ...]:
    """``--models a,b,c`` as names, spaces around them allowed."""
    return tuple(part.strip() for part in text.split(","))


def environment_record(argv: Sequence[str] | None) -> dict[str, object]:
    """Package versions, device and command line, for the run's record."""
    import platform
    from importlib import metadata

    from fibjax import runtime

    versions = {"python": platform.python_version()}
    for package in (
        "fibjax",
        "jax",
        "jaxlib",
        "flax",
        "optax",
        "numpy",
        "scipy",
        "matplotlib",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "versions": versions,
        "device": runtime.device_description(),
        "platform": platform.platform(),
        "command": ["fibjax", *(sys.argv[1:] if argv is None else argv)],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run_compare(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    """``fibjax compare``: trains both arms, saving each, then writes the report.

    Everything that can be refused is refused before any training: bad options, a folder
    that cannot be used, options that conflict with ``--resume``, saved files that disagree
    with ``run.json``, and settings that cannot fit in memory.
    """
    dist = distributed_config(args)
    default_out = Path("results") / time.strftime("%Y%m%d-%H%M%S")
    if dist.enabled and not args.worker:
        return supervised(args, dist, default_out)
    if args.resume is None:
        compare_config_from(args, seeds=(0,))  # every option but the seeds, cheaply first
        n_seeds = _seed_count(args)
        if n_seeds >= LARGE_RUN:
            # Importing JAX and checking the seeds and folder take a second or two before the
            # first phase; a large run says what it does at once.
            where = args.out or default_out
            print(f"preparing a run of {n_seeds} seeds in {where} ...", file=sys.stderr)
    if dist.enabled:
        return run_across(
            args,
            dist,
            lambda: _prepare_compare(args, argv, default_out),
            lambda out_dir, peers: _train_and_report(
                out_dir, None, args.allow_version_change, peers
            ),
        )
    resumed = None if args.resume is None else _check_resume(args)  # before JAX starts
    program_cache = configure_runtime(args)
    out_dir = _prepare_compare(args, argv, default_out, resumed)
    return _train_and_report(out_dir, program_cache, args.allow_version_change)


def _prepare_compare(args: argparse.Namespace, argv, default_out: Path, resumed=None) -> Path:
    """Checks a resumed run (``resumed``: its checked config) or creates a new run's folder."""
    from fibjax import compare

    if args.resume is not None:
        config = _check_resume(args) if resumed is None else resumed
        _check_fits(config, len(config.seeds))
        return args.resume
    out_dir = args.out or default_out
    _check_fits(compare_config_from(args, seeds=(0,)), _seed_count(args))
    try:
        compare.prepare_out_dir(out_dir, compare_config_from(args), environment_record(argv))
    except ValueError as error:
        raise UsageError(str(error)) from None
    return out_dir


LARGE_RUN = 10_000  # seeds from which fibjax compare says what it does before JAX starts


def _seed_count(args: argparse.Namespace) -> int:
    """How many seeds the options give, checked without building them (or importing JAX)."""
    if args.seed_list is not None:
        return len(args.seed_list.split(","))
    if not 1 <= args.seeds <= 2**32:  # fibjax.train.MAX_SEED + 1
        raise UsageError(f"--seeds={args.seeds} must be an integer from 1 to {2**32}")
    return args.seeds


def _check_fits(config, n_seeds: int) -> None:
    """Refuses, before anything compiles, a run whose arms cannot fit in memory."""
    import jax

    from fibjax.data import windows_from_config
    from fibjax.train import check_memory

    data = windows_from_config(config.data)
    for _, model, _ in config.arms():
        try:
            check_memory(config.train_config(model), data, n_seeds, jax.local_devices())
        except ValueError as error:
            raise UsageError(str(error)) from None


# Options of ``fibjax compare`` that the saved configuration of a run fixes, by where
# CompareConfig keeps them.
_SAVED_OPTIONS = {
    "hidden": ("hidden",),
    "epochs": ("epochs",),
    "batch_size": ("batch_size",),
    "learning_rate": ("learning_rate",),
    "optimizer": ("optimizer",),
    "alpha": ("alpha",),
    "aa": ("aa",),
    "aa_model": ("aa_model",),
    "cell": ("cell",),
    "models": ("models",),
    "n_terms": ("data", "n_terms"),
    "window": ("data", "window"),
    "train_fraction": ("data", "train_fraction"),
    "scaling": ("data", "scaling"),
}


def given_options(argv: Sequence[str]) -> set[str]:
    """The destinations of the options that ``argv`` gives explicitly (not by default)."""
    parser = build_parser()
    unset = object()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for sub in subparsers.choices.values():
        for action in sub._actions:
            if action.dest not in ("help", "handler"):
                action.default = unset
    args = parser.parse_args(argv)
    return {name for name, value in vars(args).items() if value is not unset}


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_resume(args: argparse.Namespace):
    """Every check of ``--resume DIR`` that can be made before training; returns its config."""
    from fibjax import compare, storage

    out_dir = args.resume
    given = given_options(args.argv)
    if "out" in given:
        raise UsageError(
            f"--out conflicts with --resume: a resumed run continues in {out_dir}; leave out --out"
        )
    if not out_dir.is_dir():
        raise UsageError(f"--resume {out_dir}: no such folder")
    storage.remove_stale_temporaries(out_dir)
    run_file = out_dir / compare.RUN_FILE
    if not run_file.exists() and not list(out_dir.glob("arm_*.npz")):
        raise UsageError(
            f"--resume {out_dir}: holds no {compare.RUN_FILE}; the run was stopped before it"
            f" began training: start it again with fibjax compare --out {out_dir} and its options"
        )
    try:
        config, _ = compare.load_run(out_dir)
    except storage.ResultFileError as error:
        raise UsageError(f"--resume: {error}") from None
    _check_resume_options(args, given, config, run_file)
    try:
        storage.check_writable(out_dir)
    except OSError as error:
        raise UsageError(
            f"--resume {out_dir}: cannot be written ({error.strerror or error}); make it"
            " writable, or copy the folder and resume the copy"
        ) from None
    try:
        compare.open_for_resume(out_dir, args.allow_version_change)
    except storage.ResultFileError as error:
        raise UsageError(f"--resume: {error}") from None
    return config


def _check_resume_options(args, given: set[str], config, run_file: Path) -> None:
    """Refuses a training option given with ``--resume`` that differs from the saved one."""
    for name, where in _SAVED_OPTIONS.items():
        if name not in given:
            continue
        saved = config
        for part in where:
            saved = getattr(saved, part)
        value = _model_list(args.models) if name == "models" else getattr(args, name)
        if value != saved or isinstance(value, bool) != isinstance(saved, bool):
            if name == "models":
                value, saved = ",".join(value), ",".join(saved)
                saved_text = saved
            else:
                saved_text = repr(saved)
            raise UsageError(
                f"{_option(name)} {value} differs from the saved {saved_text} in {run_file};"
                " a resumed run keeps its configuration: leave the option out, or start a new"
                " run with --out"
            )
    if given & {"seeds", "seed_list"} and _seed_list(args) != config.seeds:
        raise UsageError(
            f"the seeds given differ from the {len(config.seeds)} saved in {run_file}; a resumed"
            " run keeps its seeds: leave --seeds/--seed-list out, or start a new run with --out"
        )


class _Preload:
    """Imports a module in a background thread, started on the first :meth:`start`.

    The report's libraries (SciPy's statistics, Matplotlib) take most of a second to import.
    Started once the devices train, while the main thread only waits for them, the import
    costs no time; started earlier, it would slow the main thread's own Python work. A failed
    import is left for the main thread's own import to report.
    """

    def __init__(self, module: str) -> None:
        self.thread = threading.Thread(target=self._load, args=(module,), daemon=True)

    @staticmethod
    def _load(module: str) -> None:
        with contextlib.suppress(Exception):  # the main thread imports it again and reports
            importlib.import_module(module)

    def start(self, *_: object) -> None:
        if self.thread.ident is None:
            self.thread.start()

    def join(self) -> None:
        if self.thread.ident is not None:
            self.thread.join()


@contextlib.contextmanager
def _catch_ctrl_c() -> Iterator[dict[str, bool]]:
    """Notes a Ctrl-C even where Python swallows its ``KeyboardInterrupt``.

    A Ctrl-C that lands while the garbage collector runs JAX's callback raises inside that
    callback, where Python prints "Exception ignored" and carries on. Inside this block the
    handler also sets ``["hit"]``, so the run can stop at its next step all the same, and such
    a swallowed interrupt is not printed.
    """
    state = {"hit": False}
    if threading.current_thread() is not threading.main_thread():
        yield state  # only the main thread may set signal handlers
        return

    def on_sigint(signum, frame):
        state["hit"] = True
        raise KeyboardInterrupt

    def on_unraisable(unraisable):
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            previous_hook(unraisable)

    previous_handler = signal.signal(signal.SIGINT, on_sigint)
    previous_hook, sys.unraisablehook = sys.unraisablehook, on_unraisable
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        sys.unraisablehook = previous_hook


def _train_and_report(
    out_dir: Path, program_cache: Path | None, allow_version_change: bool = False, peers=None
) -> int:
    from fibjax import compare, distributed, storage
    from fibjax.progress import Progress

    peers = distributed.Peers() if peers is None else peers
    preload = _Preload("fibjax.report")
    saved: list[str] = []
    try:
        # Process 0 alone shows the phases and writes; the others train their share quietly.
        with Progress(None if peers.main else io.StringIO()) as progress, _catch_ctrl_c() as ctrl_c:
            try:
                arms = compare.run_comparison(
                    out_dir,
                    progress=progress,
                    on_saved=saved.append,
                    program_cache=program_cache,
                    on_training=preload.start if peers.main else None,
                    allow_version_change=allow_version_change,
                    peers=peers,
                )
                if not peers.main:
                    return 0
                if ctrl_c["hit"]:  # pressed, but swallowed on the way
                    raise KeyboardInterrupt
            except KeyboardInterrupt:
                progress.close()
                what = ", ".join(saved) if saved else "nothing yet"
                _interrupted(
                    f"saved in {out_dir}: {what}. Continue with: fibjax compare --resume {out_dir}"
                )
                return 130
            except (storage.ResultFileError, distributed.PeerError) as error:
                raise UsageError(str(error)) from None
            progress.phase("writing the report")
            try:
                summary = _write_report(out_dir, arms, preload)
            except storage.ResultFileError as error:  # e.g. the code changed during the run
                raise UsageError(f"every model is saved, but no report: {error}") from None
            except KeyboardInterrupt:
                progress.close()
                _interrupted(
                    f"every model is saved in {out_dir}."
                    f" Write the report with: fibjax report {out_dir}"
                )
                return 130
    finally:
        _join_quietly(preload)  # no import left half done when the interpreter shuts down
    peers.finish()
    print(summary_table(summary))
    print(f"\nReport: {Path(out_dir) / 'report.md'}")
    return 0


def _write_report(out_dir: Path, arms: dict, preload: _Preload) -> dict:
    preload.join()
    from fibjax import compare, report

    report.write_tables(out_dir, arms, compare.load_run(out_dir)[0])
    return report.build_report(out_dir)


def _interrupted(what: str) -> None:
    print(f"fibjax: interrupted; {what}", file=sys.stderr)


def _join_quietly(preload: _Preload) -> None:
    # A second Ctrl-C while waiting gives up waiting, not a traceback.
    with contextlib.suppress(KeyboardInterrupt):
        preload.join()


def summary_table(summary: dict) -> str:
    """A short terminal table of the comparison's models, then its verdicts."""
    stats = {}
    for comparison in summary["comparisons"].values():
        for key in ("a", "b"):
            stats[comparison["names"][key]] = comparison["summary"][key]
    lines = [
        f"{'model':<14} {'seeds':>5} {'diverged':>8} {'geo-mean test MSE':>18}"
        f" {'median log10 MSE':>17}  layers"
    ]
    for label, arm in summary["arms"].items():
        s = stats[label]
        geo = "-" if s["geometric_mean_mse"] is None else f"{s['geometric_mean_mse']:.3e}"
        med = "-" if s["median"] is None else f"{s['median']:.3f}"
        lines.append(
            f"{label:<14} {arm['n_seeds']:>5} {arm['n_diverged']:>8} {geo:>18} {med:>17}"
            f"  {summary['models'][label]}"
        )
    return "\n".join(lines) + "\n\n" + summary["verdict"]


def _from_saved_run(folder: Path, build):
    """Runs ``build(folder)`` on a finished run, turning a bad folder or file into one line."""
    from fibjax import storage

    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")
    try:
        return build(folder)
    except storage.ResultFileError as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise UsageError(
            f"{folder}: cannot write the report ({_os_error_text(error)}); the previous"
            " report's files are unchanged. Make the folder writable, or copy it"
        ) from None


def _os_error_text(error: OSError) -> str:
    where = f": {error.filename}" if error.filename else ""
    return f"{error.strerror or error}{where}"


def _is_sweep(folder: Path) -> bool:
    return (Path(folder) / "sweep.json").exists()  # fibjax.sweep.SWEEP_FILE, without JAX


def _run_report(args: argparse.Namespace) -> int:
    from fibjax import report

    if _is_sweep(args.dir):
        from fibjax import sweep, sweep_cli

        summary = _from_saved_run(args.dir, sweep.build_report)
        print(sweep_cli.decision_table(summary))
        print(f"\nReport: {args.dir / 'report.md'}")
        return 0
    summary = _from_saved_run(args.dir, report.build_report)
    print(summary_table(summary))
    print(f"\nReport: {args.dir / 'report.md'}")
    return 0


def _run_plot(args: argparse.Namespace) -> int:
    from fibjax import report

    if _is_sweep(args.dir):  # a sweep's figures are drawn with its report
        return _run_report(args)
    for file in _from_saved_run(args.dir, report.redraw_figures).values():
        print(args.dir / file)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    from fibjax import supervisor

    worker = supervisor.attach_worker_streams()
    _tolerate_output_encoding()
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        args.worker = worker
        return args.handler(args)
    except UsageError as error:
        print(f"fibjax: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:  # a path too long, a folder where a file goes, a full disk...
        print(f"fibjax: error: {_os_error_text(error)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fibjax: interrupted", file=sys.stderr)
        return 130


def _tolerate_output_encoding() -> None:
    """Lets a terminal that is not UTF-8 show the output with '?' for α, ×, … instead of failing.

    The files fibjax writes are UTF-8 whatever the terminal's encoding.
    """
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if encoding != "utf8" and hasattr(stream, "reconfigure"):
            with contextlib.suppress(Exception):
                stream.reconfigure(errors="replace")


def exit_quickly(code: int) -> NoReturn:
    """Ends the process with ``code`` without the interpreter's teardown.

    Tearing down JAX's runtime and the libraries takes about half a second (a bare JAX program
    exits 0.45 s sooner without it), a tenth of a warm default comparison. When the command
    returns, every file it wrote is complete and closed; the ``atexit`` handlers still run and
    the standard streams are flushed. For the command line's entry points only: a program
    that calls :func:`main` keeps its own teardown.
    """
    jax = sys.modules.get("jax")
    if not (code and jax is not None and jax.distributed.is_initialized()):
        atexit._run_exitfuncs()  # what teardown would have run first (logging, coverage, ...)
    # else a process of a distributed run that failed or was interrupted: JAX's teardown would
    # wait for the others at a shutdown barrier and then abort; they learn of the end from the
    # closed connection instead.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def run() -> NoReturn:
    """The ``fibjax`` command: :func:`main`, then :func:`exit_quickly`."""
    exit_quickly(main())


if __name__ == "__main__":
    run()
