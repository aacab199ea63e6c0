"""``python -m fibjax``: the same as the ``fibjax`` command."""

from fibjax.cli.entry import run

# Guarded, so that importing this module (as multiprocessing's "spawn" does) runs nothing.
if __name__ == "__main__":
    run()
