"""``python -m fibjax``: the same as the ``fibjax`` command."""

import sys

from fibjax.cli import main

sys.exit(main())
