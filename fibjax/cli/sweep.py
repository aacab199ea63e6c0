"""``fibjax sweep``: comparisons over a grid of cells, attention forms and the task.

Mistakes a user can make print one line and exit with status 2
(:class:`fibjax.cli.options.UsageError`).
"""

from __future__ import annotations

import argparse
import io
import itertools
import sys
from pathlib import Path

from fibjax.cli.options import (
    LARGE_RUN,
    UsageError,
    add_distributed_options,
    add_runtime_options,
    distributed_config,
    given_options,
    not_resumable,
    option,
    say_large_data,
    seed_count,
    seed_list,
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
from fibjax.reports.formatting import count

# Each list option: its destination, the SweepConfig field it fills, how one item is read.
_LISTS = {
    "cell": ("cells", str),
    "models": ("models", str),
    "hidden": ("hiddens", int),
    "window": ("windows", int),
    "scaling": ("scalings", str),
    "learning_rate": ("learning_rates", float),
}
# Options with one value, by the SweepConfig field they fill.
_SINGLE = (
    "epochs",
    "batch_size",
    "optimizer",
    "n_terms",
    "train_fraction",
    "alpha",
    "rows",
    "cols",
)


def add_parser(commands) -> None:
    """Adds ``fibjax sweep`` to the sub-commands."""
    sweep = commands.add_parser(
        "sweep",
        help="where does attention help? comparisons over a grid of cells, attention forms and"
        " the task, corrected for the number of settings",
    )
    add_sweep_options(sweep)
    sweep.set_defaults(handler=run_sweep)


def add_sweep_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``fibjax sweep`` and ``experiments/sweep.py``; defaults from SweepConfig."""
    grid = parser.add_argument_group("grid (comma lists; default: the default sweep)")
    grid.add_argument("--cell", help="recurrent cells, e.g. simple,gru,lstm (simple,gru)")
    grid.add_argument(
        "--models", help="attention forms, each against vanilla (attention,additive,dot)"
    )
    grid.add_argument("--hidden", help="hidden sizes, e.g. 2,8 (2)")
    grid.add_argument("--window", help="window lengths (10,20,40)")
    grid.add_argument("--scaling", help="minmax and/or log (minmax,log)")
    grid.add_argument("--learning-rate", help="step sizes, e.g. 1e-3,1e-2 (0.001)")
    group = parser.add_argument_group("training and statistics")
    seeds = group.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (64)")
    seeds.add_argument("--seed-list", default=None, help="comma-separated seeds, e.g. 3,7,11")
    group.add_argument("--epochs", type=int, help="epochs (30)")
    group.add_argument("--batch-size", type=int, help="windows per update (1)")
    group.add_argument("--optimizer", help="keras_adam (default), adam, adamw, sgd, rmsprop")
    group.add_argument("--n-terms", type=int, help="Fibonacci terms (1200)")
    group.add_argument("--train-fraction", type=float, help="share of windows for training (0.7)")
    group.add_argument("--alpha", type=float, help="familywise level, Holm over the grid (0.05)")
    group.add_argument("--rows", help="the heat map's rows: an axis (model)")
    group.add_argument("--cols", help="the heat map's columns: an axis (window)")
    out = parser.add_argument_group("output")
    out.add_argument("--out", type=Path, help="output folder (default results/sweep-<timestamp>)")
    out.add_argument("--resume", type=Path, help="continue an interrupted sweep's folder")
    out.add_argument(
        "--shard",
        help="train only part K of N of the grid (e.g. $SLURM_ARRAY_TASK_ID/8); merge the parts"
        " with fibjax merge",
    )
    out.add_argument(
        "--allow-version-change",
        action="store_true",
        help="let --resume train under other code than the sweep began with",
    )
    add_runtime_options(parser)
    add_distributed_options(parser)


def config_fields(args: argparse.Namespace, *, seeds: bool = True) -> dict[str, object]:
    """The SweepConfig fields that the options give (the others keep their defaults).

    ``seeds=False`` leaves the seeds out, so that a count too large to build is refused from the
    count alone (:func:`_prepare_sweep`).
    """
    fields: dict[str, object] = {}
    for dest, (field, read) in _LISTS.items():
        text = getattr(args, dest)
        if text is not None:
            fields[field] = _read_list(dest, text, read)
    for name in _SINGLE:
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    if seeds and (args.seed_list is not None or args.seeds is not None):
        fields["seeds"] = _seeds(args)
    return fields


def _read_list(dest: str, text: str, read) -> tuple:
    try:
        return tuple(read(part.strip()) for part in text.split(","))
    except ValueError:
        kind = {int: "integers", float: "numbers"}.get(read, "names")
        raise UsageError(f"{option(dest)} {text!r} must be comma-separated {kind}") from None


def _seeds(args: argparse.Namespace) -> tuple[int, ...]:
    if args.seed_list is not None:
        return seed_list(args)
    return tuple(range(seed_count(args)))


def _seed_total(args: argparse.Namespace, config) -> int:
    """How many seeds the sweep trains, from the options alone when they give them."""
    given = args.seed_list is not None or args.seeds is not None
    return seed_count(args) if given else len(config.seeds)


def run_sweep(args: argparse.Namespace) -> int:
    """``fibjax sweep``: trains every arm not saved yet, saving each, then writes the report.

    Everything that can be refused is refused before any training.
    """
    dist = distributed_config(args)
    default_out = default_out_dir("sweep-")
    if dist.enabled and not args.worker:
        return supervised(args, dist, default_out)
    if args.resume is None:
        config, _ = _new_sweep(args, seeds=False)  # every option but the seeds, before JAX starts
        n_seeds = _seed_total(args, config)
        if n_seeds >= LARGE_RUN:
            where = args.out or default_out
            print(f"preparing a sweep of {n_seeds} seeds in {where} ...", file=sys.stderr)
    if dist.enabled:
        return run_across(
            args,
            dist,
            lambda: _prepare_sweep(args, default_out)[0],
            lambda out_dir, peers: _train_and_report(
                out_dir, None, None, args.allow_version_change, peers
            ),
        )
    resumed = None if args.resume is None else _check_resume(args)  # before JAX starts
    program_cache = configure_runtime(args)
    out_dir, shard = _prepare_sweep(args, default_out, resumed)
    return _train_and_report(out_dir, shard, program_cache, args.allow_version_change)


def _new_sweep(args: argparse.Namespace, *, seeds: bool = True):
    """The configuration and shard of a new sweep's options (its seeds the default ones when
    ``seeds`` is false)."""
    from fibjax.studies import sweep_grid

    try:
        config = sweep_grid.SweepConfig(**config_fields(args, seeds=seeds))
        return config, None if args.shard is None else sweep_grid.parse_shard(args.shard)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _prepare_sweep(args: argparse.Namespace, default_out: Path, resumed=None):
    """Checks a resumed sweep (``resumed``: its checked config and shard) or creates a new one.

    Returns:
      ``(out_dir, shard)``.
    """
    from fibjax.studies import sweep

    if args.resume is not None:
        config, shard = _check_resume(args) if resumed is None else resumed
        _check_fits(config)
        return args.resume, shard
    probe, _ = _new_sweep(args, seeds=False)
    _check_fits(probe, _seed_total(args, probe))  # from the count, before the seeds are built
    config, shard = _new_sweep(args)
    out_dir = args.out or default_out
    try:
        sweep.prepare_out_dir(out_dir, config, environment_record(args.argv), shard)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return out_dir, shard


def _check_fits(config, n_seeds: int | None = None) -> None:
    """Refuses, before anything compiles, an arm that cannot fit in memory with ``n_seeds``
    seeds (default: the configuration's)."""
    import jax

    from fibjax.training.memory import check_memory, data_shape

    n_seeds = len(config.seeds) if n_seeds is None else n_seeds
    n_runs = n_seeds * len(config.learning_rates)
    checked = set()
    # From the data's configuration: a data set too large to hold is refused before it is built.
    for arm in config.arms():
        data = config.data_config(arm.window, arm.scaling)
        train = config.train_config(arm.cell, arm.model, arm.hidden)
        # The estimate depends on the data's shapes, not its scaling: each counted once (each
        # count traces the model).
        key = (train, data_shape(data))
        if key in checked:
            continue
        checked.add(key)
        try:
            check_memory(train, data, n_runs, jax.local_devices())
        except ValueError as error:
            raise UsageError(str(error)) from None
    for window, scaling in itertools.product(config.windows, config.scalings):
        say_large_data(config.data_config(window, scaling))


def _check_resume(args: argparse.Namespace):
    """Every check of ``--resume DIR`` before training; returns its config and shard."""
    from fibjax.results import provenance, storage
    from fibjax.studies import sweep, sweep_grid

    out_dir = args.resume
    given = given_options(args.argv, add_parser)
    if "out" in given:
        raise UsageError(
            f"--out conflicts with --resume: a resumed sweep continues in {out_dir}; leave out"
            " --out"
        )
    if not out_dir.is_dir():
        raise UsageError(f"--resume {out_dir}: no such folder")
    storage.remove_stale_temporaries(out_dir)
    if not sweep.is_sweep(out_dir):
        raise UsageError(not_resumable(out_dir, "sweep"))
    try:
        config, record = sweep.load_sweep(out_dir)
        asked = sweep_grid.config_from_dict({**config.to_dict(), **config_fields(args)})
        asked_shard = (
            sweep_grid.parse_shard(args.shard) if args.shard is not None else record["shard"]
        )
    except (ValueError, storage.ResultFileError) as error:
        raise UsageError(f"--resume: {error}") from None
    difference = _first_difference(config, asked, record["shard"], asked_shard)
    if difference is not None:
        raise UsageError(
            f"{difference} differs from the saved value in {out_dir / sweep.SWEEP_FILE}; a"
            " resumed sweep keeps its configuration: leave the option out, or start a new"
            " sweep with --out"
        )
    try:
        storage.check_writable(out_dir)
        sweep.open_for_resume(out_dir, args.allow_version_change)
        # Other analysis settings (--alpha, --rows, --cols) are taken: they change the report,
        # not what is trained.
        changes = {k: getattr(asked, k) for k in asked.ANALYSIS}
        config = provenance.set_analysis(
            out_dir, sweep.SWEEP_FILE, sweep.load_sweep, sweep_grid.config_from_dict, **changes
        )
    except storage.ResultFileError as error:
        raise UsageError(f"--resume: {error}") from None
    except OSError as error:
        raise UsageError(
            f"--resume {out_dir}: cannot be written ({error.strerror or error}); make it"
            " writable, or copy the folder and resume the copy"
        ) from None
    return config, record["shard"]


def _first_difference(saved, asked, saved_shard, asked_shard) -> str | None:
    if asked_shard != saved_shard:
        return f"--shard {'/'.join(map(str, asked_shard or ())) or 'none'}"
    for name, value in asked.to_dict().items():
        if name not in asked.ANALYSIS and value != saved.to_dict()[name]:
            dest = {v[0]: k for k, v in _LISTS.items()}.get(name, name)
            if name == "seeds":
                return f"--seeds ({count(len(value), 'seed')} given)"
            shown = ",".join(map(str, value)) if isinstance(value, list) else value
            return f"{option(dest)} {shown}"
    return None


def _train_and_report(
    out_dir: Path, shard, program_cache, allow_version_change: bool, peers=None
) -> int:
    from fibjax.cluster import distributed
    from fibjax.reports import sweep_report
    from fibjax.results import storage
    from fibjax.studies import sweep
    from fibjax.training.progress import Progress

    peers = distributed.Peers() if peers is None else peers
    done = sweep.SweepProgress()
    # Process 0 alone shows the phases and writes; the others train their share quietly.
    with Progress(None if peers.main else io.StringIO()) as progress, catch_ctrl_c() as ctrl_c:
        try:
            sweep.run_sweep(
                out_dir,
                progress=progress,
                done=done,
                program_cache=program_cache,
                allow_version_change=allow_version_change,
                peers=peers,
            )
            if ctrl_c["hit"]:
                raise KeyboardInterrupt
            if not peers.main:
                return 0
        except KeyboardInterrupt:
            progress.close()
            what = ", ".join(done.saved) if done.saved else "no new arm"
            interrupted_run("sweep", out_dir, what, peers)
            return ctrl_c["status"]
        except (storage.ResultFileError, distributed.PeerError) as error:
            raise UsageError(str(error)) from None
        except OSError as error:  # a full disk, a folder made read-only during the run
            progress.close()
            what = ", ".join(done.saved) if done.saved else "no new arm"
            raise out_of_room(error, "sweep", out_dir, what) from None
        progress.close()
        peers.finish()  # every process has trained its share; process 0 writes alone
        print(_work_line(done), file=sys.stderr)
        shard = sweep.load_sweep(out_dir)[1]["shard"] if peers.count > 1 else shard
        if shard is not None:
            k, n = shard
            print(
                f"shard {k}/{n} is complete in {out_dir}; when every shard is, merge them with"
                f" fibjax merge OUT DIR...",
            )
            return 0
        progress.phase("writing the report")
        try:
            summary = sweep_report.build_report(out_dir)
        except storage.ResultFileError as error:
            raise UsageError(f"every arm is saved, but no report: {error}") from None
        except OSError as error:
            raise out_of_room(error, "sweep", out_dir, None, unit="arm") from None
        except KeyboardInterrupt:
            progress.close()
            interrupted(
                f"every arm is saved in {out_dir}. Write the report with: fibjax report {out_dir}"
            )
            return ctrl_c["status"]
    print(decision_table(summary))
    print(f"\nReport: {Path(out_dir) / 'report.md'}")
    return 0


def _work_line(done) -> str:
    at_once = f", {done.compile_workers} at a time" if done.compile_workers > 1 else ""
    return (
        f"trained {count(len(done.saved), 'arm')} with"
        f" {count(done.programs, 'compiled program')}{at_once}:"
        f" {done.compile_s:.1f} s compiling ({done.wait_s:.1f} s waited for),"
        f" {done.train_s:.1f} s training"
    )


def decision_table(summary: dict) -> str:
    """How many grid points favour each side, and the correction used."""
    counts = summary["decisions"]
    total = sum(counts.values())
    return (
        f"{count(total, 'grid point')}: attention lower in {counts.get('attention', 0)},"
        f" vanilla lower in {counts.get('vanilla', 0)}, undecided in"
        f" {counts.get('undecided', 0)} (Wilcoxon signed-rank, Holm over"
        f" {count(total, 'grid point')})"
    )


def run_report(folder: Path) -> dict:
    """Rebuilds a sweep's report from its saved arms."""
    from fibjax.reports import sweep_report

    return sweep_report.build_report(folder)
