"""The ``fibjax`` command line.

:mod:`fibjax.cli.entry` holds the parser, ``main`` and ``run``; one module per command
(:mod:`~fibjax.cli.train`, :mod:`~fibjax.cli.compare`, :mod:`~fibjax.cli.saved` for ``report`` and
``plot``, :mod:`~fibjax.cli.sweep`, :mod:`~fibjax.cli.merge`) adds its sub-command; they share
:mod:`~fibjax.cli.options` (usage errors, the parser class, option groups and their readers) and
:mod:`~fibjax.cli.processes` (the runtime, runs across processes, Ctrl-C, the run's record).
"""
