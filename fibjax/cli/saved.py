"""``fibjax report`` and ``fibjax plot``: a finished run's report and figures, built again.

The run is a comparison's or a sweep's saved folder; a bad folder or file is one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fibjax.cli.compare import summary_table
from fibjax.cli.options import STUDY_FILES, UsageError, os_error_text
from fibjax.cli.sweep import decision_table


def add_parsers(commands) -> None:
    """Adds ``fibjax report`` and ``fibjax plot`` to the sub-commands."""
    report = commands.add_parser(
        "report",
        help="rebuild a finished comparison's or sweep's report, or analyse it again",
        description=(
            "Rebuilds the report of a finished comparison or sweep from its saved arms. With"
            " --alpha (and, for a sweep, --rows and --cols) it analyses and draws them again with"
            " those settings, without training, and records them in the folder's run.json or"
            " sweep.json."
        ),
    )
    report.add_argument("dir", type=Path, help="the comparison's or sweep's output folder")
    report.add_argument("--alpha", type=float, help="another level of the primary tests")
    report.add_argument("--rows", help="a sweep's heat map rows: another axis")
    report.add_argument("--cols", help="a sweep's heat map columns: another axis")
    report.set_defaults(handler=_run_report)

    plot = commands.add_parser("plot", help="redraw a finished comparison's or sweep's figures")
    plot.add_argument("dir", type=Path, help="the comparison's output folder")
    plot.set_defaults(handler=_run_plot)


def _from_saved_run(folder: Path, build):
    """Runs ``build(folder)`` on a finished run, turning a bad folder or file into one line."""
    from fibjax.results import storage

    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")
    try:
        return build(folder)
    except storage.ResultFileError as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise UsageError(
            f"{folder}: cannot write the report ({os_error_text(error)}); the previous"
            " report's files are unchanged. Make the folder writable, or copy it"
        ) from None


def _record_file(folder: Path) -> Path:
    """The study's record in ``folder``: a sweep's ``sweep.json``, else ``run.json``."""
    sweep = Path(folder) / STUDY_FILES["sweep"][0]
    return sweep if sweep.exists() else Path(folder) / STUDY_FILES["comparison"][0]


def _is_sweep(folder: Path) -> bool:
    return _record_file(folder).name == STUDY_FILES["sweep"][0]


def _set_analysis(folder: Path, args: argparse.Namespace) -> None:
    """Records the analysis settings given (``--alpha``, ``--rows``, ``--cols``) in the run's
    record; refuses, in one line, a setting the run does not have or a value it cannot take."""
    from fibjax.results import provenance

    fields = {name: getattr(args, name, None) for name in ("alpha", "rows", "cols")}
    if all(value is None for value in fields.values()):
        return
    if _is_sweep(folder):
        from fibjax.studies import sweep, sweep_grid

        where = (sweep.SWEEP_FILE, sweep.load_sweep, sweep_grid.config_from_dict)
    else:
        from fibjax.studies import compare

        if fields["rows"] is not None or fields["cols"] is not None:
            raise UsageError(f"{folder}: --rows and --cols are a sweep's; this is a comparison")
        where = (compare.RUN_FILE, compare.load_run, compare.config_from_dict)
    try:
        provenance.set_analysis(folder, *where, **fields)
    except ValueError as error:
        raise UsageError(f"{folder}: {error}") from None


def _run_report(args: argparse.Namespace) -> int:
    from fibjax.reports import compare_report as report

    record = _record_file(args.dir)
    before = record.read_bytes() if record.is_file() else None
    _from_saved_run(args.dir, lambda folder: _set_analysis(folder, args))
    try:
        if _is_sweep(args.dir):
            from fibjax.reports import sweep_report

            summary = _from_saved_run(args.dir, sweep_report.build_report)
            print(decision_table(summary))
            print(f"\nReport: {args.dir / 'report.md'}")
            return 0
        summary = _from_saved_run(args.dir, report.build_report)
    except (UsageError, KeyboardInterrupt):
        # No new report: the record keeps the settings of the report that is there.
        if before is not None and record.read_bytes() != before:
            from fibjax.results import storage

            storage.write_bytes(record, before)
        raise
    print(summary_table(summary))
    print(f"\nReport: {args.dir / 'report.md'}")
    return 0


def _run_plot(args: argparse.Namespace) -> int:
    from fibjax.reports import compare_report as report

    if _is_sweep(args.dir):  # a sweep's figures are drawn with its report
        return _run_report(args)
    for file in _from_saved_run(args.dir, report.redraw_figures).values():
        print(args.dir / file)
    return 0
