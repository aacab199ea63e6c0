"""``fibjax merge``: the shard folders of one sweep (``fibjax sweep --shard K/N``) as one sweep."""

from __future__ import annotations

import argparse
from pathlib import Path

from fibjax.cli.options import UsageError
from fibjax.cli.processes import environment_record
from fibjax.cli.sweep import decision_table


def add_parser(commands) -> None:
    """Adds ``fibjax merge`` to the sub-commands."""
    merge = commands.add_parser(
        "merge", help="merge the shard folders of one sweep (fibjax sweep --shard K/N)"
    )
    merge.add_argument("out", type=Path, help="the merged sweep's folder (new or empty)")
    merge.add_argument("dirs", type=Path, nargs="+", help="the shard folders")
    merge.set_defaults(handler=run_merge)


def run_merge(args: argparse.Namespace) -> int:
    """``fibjax merge OUT DIR...``: checks the shards belong to one sweep, writes the whole."""
    from fibjax.reports import sweep_report
    from fibjax.results import storage
    from fibjax.studies import sweep_results

    try:
        sweep_results.merge(args.out, args.dirs, environment_record(args.argv))
    except (storage.ResultFileError, ValueError) as error:
        raise UsageError(str(error)) from None
    try:
        summary = sweep_report.build_report(args.out)
    except storage.ResultFileError as error:
        raise UsageError(f"merged in {args.out}, but no report: {error}") from None
    print(decision_table(summary))
    print(f"\nReport: {args.out / 'report.md'}")
    return 0
