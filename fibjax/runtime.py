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

    Raises ``ValueError`` for an environment fibjax does not support (:func:`check_environment`).

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
    try:
        jax.config.update("jax_num_cpu_devices", cpu_devices or os.cpu_count() or 1)
    except RuntimeError:
        # JAX has started already (fibjax.cli.main called from a program that used JAX): its
        # devices stay as they are, which is only a mistake when other ones were asked for.
        if cpu_devices is not None and cpu_devices != len(jax.devices("cpu")):
            raise ValueError(
                f"--cpu-devices={cpu_devices}: JAX has started already with"
                f" {len(jax.devices('cpu'))} CPU device(s); set it before the first computation"
            ) from None
    check_environment()


def check_environment() -> None:
    """Raises ``ValueError`` for JAX settings fibjax does not support.

    fibjax trains in float32, as Keras does, and its seeds are 32-bit: 64-bit mode would change
    every result. A ``JAX_PLATFORMS`` that names a backend this machine lacks is reported here,
    in one line, rather than inside the first computation.
    """
    if jax.config.jax_enable_x64:
        raise ValueError(
            "JAX_ENABLE_X64 is on: fibjax trains in float32 as Keras does; unset JAX_ENABLE_X64"
        )
    try:
        jax.devices()
    # JAX raises an AssertionError when JAX_PLATFORMS names only platforms without a plugin.
    except (RuntimeError, AssertionError) as error:
        text = str(error).strip()
        first = text.splitlines()[0] if text else "no backend of these platforms is available"
        platforms = os.environ.get("JAX_PLATFORMS", "")
        raise ValueError(
            f"JAX cannot start its backend (JAX_PLATFORMS={platforms!r}): {first}"
        ) from None


def device_description() -> dict[str, object]:
    """The JAX backend and devices in use, for a run's record."""
    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "process_count": jax.process_count(),
    }
