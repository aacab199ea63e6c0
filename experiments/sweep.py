"""Where does attention help? A sweep over cells, attention forms and the task, with a report.

The same as ``fibjax sweep``; run ``python experiments/sweep.py --help`` for options. With its
defaults: the SimpleRNN and the GRU, three attention forms, two scalings and three window lengths,
64 paired seeds each, the report in ``results/sweep-<timestamp>/``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fibjax.cli.entry import exit_quickly, main  # noqa: E402

if __name__ == "__main__":
    exit_quickly(main(["sweep", *sys.argv[1:]]))
