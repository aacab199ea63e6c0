"""Runs a notebook top to bottom in a fresh kernel, as CI does; exits 1 when a cell fails.

Usage: ``python experiments/run_notebook.py [experiments/lista7.ipynb] [--timeout SECONDS]``. The
notebook runs in its own folder; the executed copy (with outputs) is written to ``--output`` when
given, and the stored notebook is left without outputs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "notebook", nargs="?", type=Path, default=Path(__file__).with_name("lista7.ipynb")
    )
    parser.add_argument("--timeout", type=int, default=180, help="seconds per cell (default 180)")
    parser.add_argument("--output", type=Path, help="where to write the executed notebook")
    args = parser.parse_args(argv)
    notebook = nbformat.read(args.notebook, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=args.timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(args.notebook.resolve().parent)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as error:
        print(f"{args.notebook}: a cell failed:\n{error}", file=sys.stderr)
        return 1
    finally:
        if args.output is not None:
            nbformat.write(notebook, args.output)
    print(
        f"{args.notebook}: {len(notebook.cells)} cells ran in {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
