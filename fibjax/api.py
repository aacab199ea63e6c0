"""The two studies as Python functions, for notebooks and scripts: what ``fibjax compare`` and
``fibjax sweep`` do, without the command line.

Each trains into a run folder and saves every arm as soon as it is trained, so a call that is
interrupted is continued by the same call on the same folder; the report is then written from
the saved files alone, as ``fibjax report`` would. Call :func:`fibjax.configure` first to use every
core and the caches.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fibjax.reports import compare_report, compare_tables, sweep_report
from fibjax.studies import compare, sweep
from fibjax.studies.compare import CompareConfig
from fibjax.studies.environment import environment_record
from fibjax.studies.sweep_grid import SweepConfig
from fibjax.training import runtime
from fibjax.training.progress import Phases

PathLike = str | os.PathLike[str]


def _open(out_dir: PathLike, config: Any, load, prepare, what: str) -> Path:
    """``out_dir`` prepared for ``config``: a new folder, or a saved run of the same config."""
    out_dir = Path(out_dir)
    if out_dir.is_dir() and (out_dir / what).exists():
        saved = load(out_dir)[0]
        if saved != config:
            raise ValueError(
                f"{out_dir} holds a run of another configuration; choose another folder"
            )
        return out_dir
    prepare(out_dir, config, environment_record(["python", f"fibjax.api ({what})"]))
    return out_dir


def compare_models(config: CompareConfig, out_dir: PathLike, *, show: bool | None = None) -> dict:
    """Trains every model of ``config`` under its seeds, then writes the comparison's report.

    Args:
      config: the comparison (models, cell, seeds, training and data settings).
      out_dir: a new or empty folder, or one that holds an interrupted run of ``config``
        (its saved arms are kept, the rest trained).
      show: show the phases as a progress bar (default: only in a notebook).

    Returns:
      The comparison's summary (``summary.json``): verdicts, statistics and every file written.

    Raises:
      ValueError: the folder cannot be used, or holds a run of another configuration.
      fibjax.results.storage.ResultFileError: saved files are damaged or disagree.
    """
    out_dir = _open(out_dir, config, compare.load_run, compare.prepare_out_dir, compare.RUN_FILE)
    with Phases(show=show, total=3) as progress:
        arms = compare.run_comparison(
            out_dir, progress=progress, program_cache=runtime.programs_dir()
        )
        progress.phase("writing the report")
        compare_tables.write_tables(out_dir, arms, config)
        return compare_report.build_report(out_dir)


def sweep_grid(config: SweepConfig, out_dir: PathLike, *, show: bool | None = None) -> dict:
    """Trains every grid point of ``config``, then writes the sweep's report.

    Args:
      config: the grid (cells, models, hidden sizes, windows, scalings, learning rates) and seeds.
      out_dir: a new or empty folder, or one that holds an interrupted sweep of ``config``.
      show: show the phases as a progress bar (default: only in a notebook).

    Returns:
      The sweep's summary (``summary.json``): one row per grid point, with Holm's decisions.

    Raises:
      ValueError: the folder cannot be used, or holds a sweep of another configuration.
      fibjax.results.storage.ResultFileError: saved files are damaged or disagree.
    """
    out_dir = _open(out_dir, config, sweep.load_sweep, sweep.prepare_out_dir, sweep.SWEEP_FILE)
    with Phases(show=show, total=3) as progress:
        sweep.run_sweep(out_dir, progress=progress, program_cache=runtime.programs_dir())
        progress.phase("writing the report")
        return sweep_report.build_report(out_dir)
