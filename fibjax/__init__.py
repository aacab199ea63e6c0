"""fibjax: does a simple attention layer help a recurrent network? The notebook's experiment in JAX.

What a notebook needs is here, imported when first used (``import fibjax`` does not import JAX):

- :func:`configure`: devices and caches, as the command line sets them; call first.
- :func:`fibonacci_windows` and :class:`DataConfig`: the notebook's data.
- :class:`TrainConfig`, :func:`fit` (one seed) and :func:`fit_seeds` (many, in one compiled call).
- :class:`CompareConfig` and :func:`compare_models`: the comparison, with its report.
- :class:`SweepConfig` and :func:`sweep_grid`: a grid of comparisons, with its report.
- :class:`StatsConfig` and :func:`compare`: the statistics of two samples of test MSEs.

The layers, from the bottom: ``results`` (result files, provenance) and ``stats``; ``data``;
``models``; ``cluster`` (processes across hosts); ``training``; ``studies`` (comparison, sweep);
``reports``; ``api``; ``cli``. Each imports only from its own layer and those below.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # JAX is imported by configure() and the names below, not when fibjax is
    from fibjax.training.runtime import Runtime

__version__ = "0.1.0"

# Each public name and the module that defines it; imported on first use.
_PUBLIC = {
    "fibonacci_windows": "fibjax.data",
    "DataConfig": "fibjax.data",
    "TrainConfig": "fibjax.training.config",
    "FitResult": "fibjax.training.config",
    "fit": "fibjax.training.program",
    "fit_seeds": "fibjax.training.seeds",
    "CompareConfig": "fibjax.studies.compare",
    "SweepConfig": "fibjax.studies.sweep_grid",
    "compare_models": "fibjax.api",
    "sweep_grid": "fibjax.api",
    "StatsConfig": "fibjax.stats",
    "compare": "fibjax.stats",
}

__all__ = ["configure", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'fibjax' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})


def configure(
    *,
    cpu_devices: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    no_cache: bool = False,
) -> Runtime:
    """Splits the CPU into devices and turns on the caches, as the command line does; call first.

    One CPU device per core this process may run on (``cpu_devices`` to choose), JAX's
    compilation cache and fibjax's folder of traced programs in ``cache_dir`` (default:
    ``$FIBJAX_CACHE_DIR``, else ``~/.cache/fibjax/jax``; ``FIBJAX_CACHE_DIR=off`` or
    ``no_cache=True`` turns them off).
    :func:`fit_seeds` then shards seeds over every core and keeps its traced programs there.
    Python's cyclic garbage collector is set to run less often, as tracing makes many objects
    (:func:`fibjax.training.runtime.collect_less`). Called after JAX has started, it says so in
    one line on stderr: JAX's devices are fixed when it starts. JAX is imported here, not when
    fibjax is.

    Returns:
      A :class:`fibjax.training.runtime.Runtime` (devices, platform and folders in use).
    """
    from fibjax.training import runtime

    if no_cache:
        return runtime.setup(cpu_devices=cpu_devices, cache_dir=None)
    if cache_dir is None:
        return runtime.setup(cpu_devices=cpu_devices)
    return runtime.setup(cpu_devices=cpu_devices, cache_dir=cache_dir)
