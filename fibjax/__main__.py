"""``python -m fibjax``: the same as the ``fibjax`` command."""

import sys

from fibjax.cli import main

# Guarded, so that importing this module (as multiprocessing's "spawn" does) runs nothing.
if __name__ == "__main__":
    sys.exit(main())
