"""Tables, reports and figures of saved studies, from their saved files alone (no training).

The comparison (:mod:`fibjax.studies.compare`):

- :mod:`fibjax.reports.compare_tables`: ``results.csv`` and ``curves.npz`` written from the
  saved arms, read back and checked against the run and the arms.
- :mod:`fibjax.reports.compare_report`: statistics, verdict, ``summary.json``, ``report.md``
  and the figures drawn (:func:`~fibjax.reports.compare_report.build_report`).
- :mod:`fibjax.reports.compare_plots`: its figures.

The sweep (:mod:`fibjax.studies.sweep`):

- :mod:`fibjax.reports.sweep_axes`: the axes of the grid, their values and their text.
- :mod:`fibjax.reports.sweep_table`: each grid point's statistics, decided over the grid, and
  ``sweep.csv``.
- :mod:`fibjax.reports.sweep_report`: ``report.md``, ``summary.json`` and the figures written
  together (:func:`~fibjax.reports.sweep_report.write_sweep_report`,
  :func:`~fibjax.reports.sweep_report.build_report`).
- :mod:`fibjax.reports.sweep_plots`: its figures.

Shared by both: :mod:`fibjax.reports.figures` (figure size, palette, atomic PNG) and
:mod:`fibjax.reports.formatting` (numbers as the reports write them).
"""
