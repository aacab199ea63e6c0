"""Process-wide JAX settings for the command line and benchmarks: CPU devices and compile cache.

The library itself changes no JAX setting; entry points call :func:`configure` once, before the
first computation, because JAX fixes its devices when its backend starts.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

CACHE_ENV = "FIBJAX_CACHE_DIR"
CACHE_OFF = ("", "0", "off", "none", "false")


def default_cache_dir() -> Path | None:
    """Where compiled programs are kept: ``$FIBJAX_CACHE_DIR``, else ``~/.cache/fibjax/jax``.

    ``FIBJAX_CACHE_DIR=off`` (or empty) turns the cache off and gives ``None``.
    """
    if CACHE_ENV in os.environ:
        value = os.environ[CACHE_ENV].strip()
        return None if value.lower() in CACHE_OFF else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fibjax" / "jax"


def configure(*, cache_dir: Path | None, cpu_devices: int | None = None) -> None:
    """Turns on JAX's persistent compilation cache and splits the CPU into devices.

    Args:
      cache_dir: folder of the persistent compilation cache, or ``None`` to leave it off.
      cpu_devices: CPU devices to expose (default: one per core), so that the seed axis is
        sharded over every core; XLA runs one training loop on one core.
    """
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(cache_dir))
        # The programs compile in about a second each; cache them all.
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_num_cpu_devices", cpu_devices or os.cpu_count() or 1)


def device_description() -> dict[str, object]:
    """The JAX backend and devices in use, for a run's record."""
    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "process_count": jax.process_count(),
    }
