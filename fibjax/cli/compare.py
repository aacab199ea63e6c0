"""``fibjax compare``: the main experiment, two or more models under the same seeds, with a report.

Everything that can be refused is refused before any training, ``--resume`` included.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from fibjax.cli.options import (
    BASELINE,
    DEFAULT_MODELS,
    LARGE_RUN,
    MODELS,
    UsageError,
    add_data_options,
    add_distributed_options,
    add_runtime_options,
    add_training_options,
    data_config_from,
    distributed_config,
    given_options,
    model_list,
    not_resumable,
    option,
    say_large_data,
    seed_count,
    seed_list,
    training_options,
)
from fibjax.cli.processes import (
    catch_ctrl_c,
    configure_runtime,
    default_out_dir,
    environment_record,
    interrupted,
    interrupted_run,
    out_of_room,
    run_across,
    supervised,
)


def add_parser(commands) -> None:
    """Adds ``fibjax compare`` to the sub-commands."""
    compare = commands.add_parser(
        "compare",
        help="the main experiment: two or more models of one cell under the same seeds, with a"
        " report",
    )
    add_compare_options(compare)
    add_distributed_options(compare)
    compare.set_defaults(handler=run_compare)


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
        help=f"two or more of {MODELS}, comma-separated, {BASELINE} among them: each other"
        f" one is compared with {BASELINE} ({DEFAULT_MODELS})",
    )
    group.add_argument("--aa-model", default=None, help=f"the model of the A/A mode ({BASELINE})")
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


def compare_config_from(args: argparse.Namespace, seeds: tuple[int, ...] | None = None):
    """The validated :class:`fibjax.studies.compare.CompareConfig` of the command line.

    ``seeds`` replaces the seed options (to check the others before building many seeds).
    """
    from fibjax.studies.compare import CompareConfig

    chosen = {}
    if args.models is not None:
        chosen["models"] = model_list(args.models)
    if args.aa_model is not None:
        chosen["aa_model"] = args.aa_model
    try:
        return CompareConfig(
            seeds=seed_list(args) if seeds is None else seeds,
            data=data_config_from(args),
            **training_options(args),
            **chosen,
            alpha=args.alpha,
            aa=args.aa,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None


def run_compare(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    """``fibjax compare``: trains both arms, saving each, then writes the report.

    Everything that can be refused is refused before any training: bad options, a folder
    that cannot be used, options that conflict with ``--resume``, saved files that disagree
    with ``run.json``, and settings that cannot fit in memory.
    """
    dist = distributed_config(args)
    default_out = default_out_dir("")
    if dist.enabled and not args.worker:
        return supervised(args, dist, default_out)
    if args.resume is None:
        compare_config_from(args, seeds=(0,))  # every option but the seeds, cheaply first
        n_seeds = seed_count(args)
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
    from fibjax.studies import compare

    if args.resume is not None:
        config = _check_resume(args) if resumed is None else resumed
        _check_fits(config, len(config.seeds))
        return args.resume
    out_dir = args.out or default_out
    _check_fits(compare_config_from(args, seeds=(0,)), seed_count(args))
    try:
        compare.prepare_out_dir(out_dir, compare_config_from(args), environment_record(argv))
    except ValueError as error:
        raise UsageError(str(error)) from None
    return out_dir


def _check_fits(config, n_seeds: int) -> None:
    """Refuses, before anything compiles, a run whose arms cannot fit in memory."""
    import jax

    from fibjax.training.memory import check_memory

    # From the data's configuration: a data set too large to hold is refused before it is built.
    for _, model, _ in config.arms():
        try:
            check_memory(config.train_config(model), config.data, n_seeds, jax.local_devices())
        except ValueError as error:
            raise UsageError(str(error)) from None
    say_large_data(config.data)


# Options of ``fibjax compare`` that the saved configuration of a run fixes, by where
# CompareConfig keeps them.
_SAVED_OPTIONS = {
    "hidden": ("hidden",),
    "epochs": ("epochs",),
    "batch_size": ("batch_size",),
    "learning_rate": ("learning_rate",),
    "optimizer": ("optimizer",),
    "aa": ("aa",),
    "aa_model": ("aa_model",),
    "cell": ("cell",),
    "models": ("models",),
    "n_terms": ("data", "n_terms"),
    "window": ("data", "window"),
    "train_fraction": ("data", "train_fraction"),
    "scaling": ("data", "scaling"),
}


def _check_resume(args: argparse.Namespace):
    """Every check of ``--resume DIR`` that can be made before training; returns its config
    (with the ``--alpha`` given, if one was)."""
    from fibjax.results import provenance, storage
    from fibjax.studies import compare

    out_dir = args.resume
    given = given_options(args.argv, add_parser)
    if "out" in given:
        raise UsageError(
            f"--out conflicts with --resume: a resumed run continues in {out_dir}; leave out --out"
        )
    if not out_dir.is_dir():
        raise UsageError(f"--resume {out_dir}: no such folder")
    storage.remove_stale_temporaries(out_dir)
    run_file = out_dir / compare.RUN_FILE
    if not run_file.exists() and not list(out_dir.glob("arm_*.npz")):
        raise UsageError(not_resumable(out_dir, "comparison"))
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
        # Another --alpha is taken: it changes the report, not what is trained.
        alpha = args.alpha if "alpha" in given else None
        return provenance.set_analysis(
            out_dir, compare.RUN_FILE, compare.load_run, compare.config_from_dict, alpha=alpha
        )
    except (ValueError, storage.ResultFileError) as error:
        raise UsageError(f"--resume: {error}") from None


def _check_resume_options(args, given: set[str], config, run_file: Path) -> None:
    """Refuses a training option given with ``--resume`` that differs from the saved one."""
    for name, where in _SAVED_OPTIONS.items():
        if name not in given:
            continue
        saved = config
        for part in where:
            saved = getattr(saved, part)
        value = model_list(args.models) if name == "models" else getattr(args, name)
        if value != saved or isinstance(value, bool) != isinstance(saved, bool):
            if name == "models":
                value, saved = ",".join(value), ",".join(saved)
                saved_text = saved
            else:
                saved_text = repr(saved)
            raise UsageError(
                f"{option(name)} {value} differs from the saved {saved_text} in {run_file};"
                " a resumed run keeps its configuration: leave the option out, or start a new"
                " run with --out"
            )
    if given & {"seeds", "seed_list"} and seed_list(args) != config.seeds:
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


def _train_and_report(
    out_dir: Path, program_cache: Path | None, allow_version_change: bool = False, peers=None
) -> int:
    from fibjax.cluster import distributed
    from fibjax.results import storage
    from fibjax.studies import compare
    from fibjax.training.progress import Progress

    peers = distributed.Peers() if peers is None else peers
    preload = _Preload("fibjax.reports.compare_report")
    saved: list[str] = []
    try:
        # Process 0 alone shows the phases and writes; the others train their share quietly.
        with Progress(None if peers.main else io.StringIO()) as progress, catch_ctrl_c() as ctrl_c:
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
                interrupted_run("compare", out_dir, what, peers)
                return ctrl_c["status"]
            except (storage.ResultFileError, distributed.PeerError) as error:
                raise UsageError(str(error)) from None
            except OSError as error:  # a full disk, a folder made read-only during the run
                progress.close()
                what = ", ".join(saved) if saved else "nothing yet"
                raise out_of_room(error, "compare", out_dir, what) from None
            progress.phase("writing the report")
            try:
                summary = _write_report(out_dir, arms, preload)
            except storage.ResultFileError as error:  # e.g. the code changed during the run
                raise UsageError(f"every model is saved, but no report: {error}") from None
            except OSError as error:
                raise out_of_room(error, "compare", out_dir, None) from None
            except KeyboardInterrupt:
                progress.close()
                interrupted(
                    f"every model is saved in {out_dir}."
                    f" Write the report with: fibjax report {out_dir}"
                )
                return ctrl_c["status"]
    finally:
        _join_quietly(preload)  # no import left half done when the interpreter shuts down
    peers.finish()
    print(summary_table(summary))
    print(f"\nReport: {Path(out_dir) / 'report.md'}")
    return 0


def _write_report(out_dir: Path, arms: dict, preload: _Preload) -> dict:
    preload.join()
    from fibjax.reports import compare_report, compare_tables
    from fibjax.studies import compare

    compare_tables.write_tables(out_dir, arms, compare.load_run(out_dir)[0])
    return compare_report.build_report(out_dir)


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
