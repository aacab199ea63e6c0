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

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # JAX is imported by configure(), not when fibjax is
    from fibjax.runtime import Runtime

__version__ = "0.1.0"


def configure(
    *,
    cpu_devices: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    no_cache: bool = False,
) -> Runtime:
    """Splits the CPU into devices and turns on the caches, as the command line does; call first.

    One CPU device per core (``cpu_devices`` to choose), JAX's compilation cache and fibjax's
    folder of traced programs in ``cache_dir`` (default: ``$FIBJAX_CACHE_DIR``, else
    ``~/.cache/fibjax/jax``; ``FIBJAX_CACHE_DIR=off`` or ``no_cache=True`` turns them off).
    :func:`fibjax.train.fit_seeds` then shards seeds over every core and keeps its traced
    programs there. Called after JAX has started, it says so in one line on stderr: JAX's
    devices are fixed when it starts. JAX is imported here, not when fibjax is.

    Returns:
      A :class:`fibjax.runtime.Runtime` (devices, platform and folders in use).
    """
    from fibjax import runtime

    if no_cache:
        return runtime.setup(cpu_devices=cpu_devices, cache_dir=None)
    if cache_dir is None:
        return runtime.setup(cpu_devices=cpu_devices)
    return runtime.setup(cpu_devices=cpu_devices, cache_dir=cache_dir)
