"""The ``fibjax`` command line: ``train``, ``compare``, ``report``, ``plot``, ``sweep``, ``merge``.

Mistakes a user can make (a bad option, a bad file) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from fibjax.cli import compare, merge, saved, sweep, train
from fibjax.cli.options import EXIT_USAGE, Parser, UsageError, os_error_text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = Parser(prog="fibjax", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    train.add_parser(commands)
    compare.add_parser(commands)
    saved.add_parsers(commands)  # report, plot
    sweep.add_parser(commands)
    merge.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    from fibjax.cluster import supervisor

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
        print(f"fibjax: error: {os_error_text(error)}", file=sys.stderr)
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
