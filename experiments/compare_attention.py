"""Does attention help? Models under many seeds, compared statistically, with a report.

The same as ``fibjax compare``; run ``python experiments/compare_attention.py --help`` for options.
With its defaults: 64 paired seeds, the notebook's protocol, the report in ``results/<timestamp>/``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fibjax.cli.entry import exit_quickly, main  # noqa: E402

if __name__ == "__main__":
    exit_quickly(main(["compare", *sys.argv[1:]]))
