"""fibjax: does a simple attention layer help a recurrent network? The notebook's experiment in JAX.

Modules: :mod:`fibjax.data` (windows of the scaled Fibonacci sequence), :mod:`fibjax.models`
(Flax modules), :mod:`fibjax.keras_compat` (weights to and from Keras), :mod:`fibjax.optim` (Adam as
Keras does it), :mod:`fibjax.train` (training one seed or many), :mod:`fibjax.program_cache`
(traced training programs kept between runs), :mod:`fibjax.stats` (the statistical comparison),
:mod:`fibjax.compare` (the experiment's arms), :mod:`fibjax.report` and :mod:`fibjax.plots` (report
and figures), :mod:`fibjax.sweep` (grids of comparisons, shards and their merge),
:mod:`fibjax.sweep_report` and :mod:`fibjax.sweep_plots` (a sweep's table, report and figures),
:mod:`fibjax.storage` (result files), :mod:`fibjax.runtime` (devices and caches),
:mod:`fibjax.progress`, :mod:`fibjax.cli` and :mod:`fibjax.sweep_cli` (command line).
"""

__version__ = "0.1.0"
