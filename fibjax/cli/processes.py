"""How a command runs: the JAX runtime, runs across processes, Ctrl-C and the run's record.

A run across processes either joins the others here (:mod:`fibjax.cluster.distributed`) or runs
the command again as a supervised worker (:mod:`fibjax.cluster.supervisor`).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fibjax.cli.options import UsageError, option, os_error_text


def configure_runtime(args: argparse.Namespace, distributed=None) -> Path | None:
    """Applies the runtime options; must run before the first JAX computation.

    With ``distributed`` (a :class:`fibjax.cluster.distributed.DistributedConfig`), this process
    also joins the others.

    Returns:
      The folder for traced training programs (``programs`` in the cache folder), or ``None``
      when caching is off or the run spans processes (each traces its own).
    """
    from fibjax.training import runtime

    if args.cpu_devices is not None and args.cpu_devices < 1:
        raise UsageError(f"--cpu-devices={args.cpu_devices} must be an integer >= 1")
    cache_dir = None if args.no_cache else (args.cache_dir or runtime.default_cache_dir())
    if cache_dir is not None and Path(cache_dir).is_dir():  # one that cannot be made: refused
        cache_dir = runtime.writable_cache(cache_dir)
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
    from fibjax.results import storage

    storage.remove_stale_temporaries(programs)  # of runs killed while they saved a program
    return programs


DEFAULT_OUT_ENV = "FIBJAX_DEFAULT_OUT"  # a supervised worker's default folder, from its parent


def default_out_dir(prefix: str) -> Path:
    """The folder a run writes to without ``--out``: ``results/<prefix><date-time>``, or the one
    a supervised worker's parent named (:func:`supervised`)."""
    import os

    named = os.environ.pop(DEFAULT_OUT_ENV, None)
    return Path(named) if named else Path("results") / time.strftime(f"{prefix}%Y%m%d-%H%M%S")


def supervised(args: argparse.Namespace, config, default_out: Path) -> int:
    """Runs this command again as a worker child (:mod:`fibjax.cluster.supervisor`); its status."""
    from fibjax.cluster import distributed, supervisor

    try:
        distributed.check_reachable(config)  # in one line here, before a worker starts
    except ValueError as error:
        raise UsageError(str(error)) from None
    argv = list(args.argv)
    out_dir = args.resume or args.out
    extra_env = {}
    if out_dir is None:  # this process's default folder, named once, here
        out_dir = default_out
        # Not as --out: processes started at different seconds name different defaults, and
        # each compares its options with the others' (only process 0's folder is used).
        extra_env[DEFAULT_OUT_ENV] = str(out_dir)
    if config.process_id is None:
        process = "this process"
    else:
        process = f"process {config.process_id} of {config.num_processes}"
    resume = f"fibjax {args.command} --resume {out_dir} (with the same distributed options)"
    return supervisor.supervise(argv, process, out_dir, resume, extra_env)


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
    from fibjax.cluster import distributed

    configure_runtime(args, config)
    peers = distributed.Peers.of_jax()
    try:
        # Before any work, on every process alike: a process with other devices or another
        # command would train process 0's configuration, or wait for a message never sent.
        peers.check_devices()
        differs = peers.first_disagreement(run_settings(args))
    except ValueError as error:
        refusal = str(error)
    else:
        refusal = None if differs is None else disagreement_text(*differs)
    if refusal is not None:
        # Every process refuses alike, so all leave the run together. Process 0 hosts its
        # connection: leaving alone first, it had JAX abort a process still on its way to the
        # same refusal, before it could say why (seen in CI).
        peers.finish()
        raise UsageError(refusal)
    try:
        out_dir = Path(peers.decide(lambda: str(prepare()), (UsageError, OSError)))
    except distributed.PeerError as error:
        raise UsageError(str(error)) from None
    status = while_joined(config, lambda: train(out_dir, peers))
    return status if peers.main or status else share_done(peers, out_dir)


# What may differ between the processes of one run: the process id, how the command line reached
# this module, each host's cache, and how a process joins (the joining has happened by then).
# Device counts are compared as the devices themselves (Peers.check_devices).
_PER_PROCESS = {
    "process_id",
    "handler",
    "argv",
    "worker",
    "cache_dir",
    "no_cache",
    "cpu_devices",
    "distributed",
    "coordinator",
    "join_timeout",
    "heartbeat_timeout",
}


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The command and every option of this process but its id, for
    :meth:`fibjax.cluster.distributed.Peers.first_disagreement`.

    >>> run_settings(argparse.Namespace(command="compare", epochs=2, process_id=1, out=None))
    {'command': 'compare', 'epochs': 2, 'out': None}
    """
    return {
        name: str(value) if isinstance(value, Path) else value
        for name, value in sorted(vars(args).items())
        if name not in _PER_PROCESS
    }


def disagreement_text(index: int, name: str, first: Any, theirs: Any) -> str:
    """One line on processes started differently, in the command line's words.

    >>> disagreement_text(1, "epochs", 2, 3).split(";")[0]
    'the processes were started differently: process 1 has --epochs 3, process 0 --epochs 2'
    """
    if name == "command":
        what = f"process {index} runs fibjax {theirs}, process 0 fibjax {first}"
    else:
        flag = option(name)
        what = f"process {index} has {flag} {_shown(theirs)}, process 0 {flag} {_shown(first)}"
    return (
        f"the processes were started differently: {what}; start every process with the same"
        " command and options (only --process-id differs)"
    )


def _shown(value: Any) -> str:
    return "(not given)" if value is None else str(value)


def while_joined(config, work: Callable[[], int]) -> int:
    """Runs ``work()`` of a process joined to others; a lost process ends it with one line.

    When another process is lost, a collective with it fails here first (Gloo: connection
    closed). JAX's runtime then ends this process within the heartbeat timeout, and
    :mod:`fibjax.cluster.supervisor` names the lost process; this waits for that, and says what it
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


@contextlib.contextmanager
def catch_ctrl_c() -> Iterator[dict[str, Any]]:
    """Notes a Ctrl-C, or a SIGTERM, even where Python swallows its ``KeyboardInterrupt``.

    A Ctrl-C that lands while the garbage collector runs JAX's callback raises inside that
    callback, where Python prints "Exception ignored" and carries on. Inside this block the
    handler also sets ``["hit"]``, so the run can stop at its next step all the same, and such
    a swallowed interrupt is not printed. SIGTERM (``kill``, ``timeout``, a cluster's
    ``scancel`` or preemption) stops the run the same way, over the handler that
    ``jax.distributed`` installs for preemption, which would let training run to its end;
    ``["status"]`` is the exit status to give: 130 after SIGINT, 143 after SIGTERM.
    """
    state: dict[str, Any] = {"hit": False, "status": 130}
    if threading.current_thread() is not threading.main_thread():
        yield state  # only the main thread may set signal handlers
        return

    def on_sigint(signum, frame):
        state["hit"] = True
        state["status"] = 128 + signum
        raise KeyboardInterrupt

    def on_unraisable(unraisable):
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            previous_hook(unraisable)

    previous = {sig: signal.signal(sig, on_sigint) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous_hook, sys.unraisablehook = sys.unraisablehook, on_unraisable
    try:
        yield state
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = previous_hook


def interrupted(what: str) -> None:
    """Says on stderr that the command was interrupted, then ``what`` (what is saved, what next)."""
    print(f"fibjax: interrupted; {what}", file=sys.stderr)


def interrupted_run(command: str, out_dir: Path, saved: str, peers) -> None:
    """Says what an interrupted training saved and the command that continues it.

    In a run across processes, process 0 keeps the run's folder; each process is to be started
    again, with its distributed options.
    """
    again = f"fibjax {command} --resume {out_dir}"
    if peers.count == 1:
        interrupted(f"saved in {out_dir}: {saved}. Continue with: {again}")
        return
    where = f"saved in {out_dir}: {saved}" if peers.main else f"process 0 keeps {out_dir}"
    interrupted(
        f"process {peers.index} of {peers.count}; {where}. Continue with: {again} on every"
        " process, with the same distributed options"
    )


def out_of_room(
    error: OSError, command: str, out_dir: Path, saved: str | None, unit: str = "model"
) -> UsageError:
    """The one line for a write that failed during a run (a full disk, a folder made read-only).

    ``saved``: what is saved, or ``None`` once every ``unit`` is (only the report is missing).
    """
    if saved is None:
        then = (
            f"every {unit} is saved in {out_dir}, but no report. Make room, then write it with:"
            f" fibjax report {out_dir}"
        )
    else:
        then = (
            f"saved in {out_dir}: {saved}. Make room, then continue with: fibjax {command}"
            f" --resume {out_dir}"
        )
    return UsageError(f"{os_error_text(error)}; {then}")


def environment_record(argv: Sequence[str] | None) -> dict[str, object]:
    """Package versions, device and command line, for the run's record."""
    from fibjax.studies.environment import environment_record as record

    return record(["fibjax", *(sys.argv[1:] if argv is None else argv)])
