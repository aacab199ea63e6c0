"""Process-wide settings: CPU devices, XLA's CPU loops, the caches and Python's collector.

The library changes no JAX setting by itself; the command line calls :func:`configure`, and Python
users call :func:`fibjax.configure` (:func:`setup`), once, before the first computation, because
JAX fixes its devices when its backend starts.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax

CACHE_ENV = "FIBJAX_CACHE_DIR"
CACHE_OFF = ("", "0", "off", "none", "false")
PROGRAMS = "programs"  # the sub-folder of the cache that keeps traced programs

# XLA's CPU runtime runs a program as a sequence of kernels, and a while loop as its body's kernels
# once per iteration. fibjax's training is loops of tiny kernels (a step is about 40, each of its
# 40 time steps about 5), so launching them cost more than their arithmetic. XLA compiles a loop
# into one kernel instead when the loop moves few bytes (its small-while-loop pass, 1 KB by
# default); with the limit raised, fibjax's training loops compile whole: 1.3 to 1.4 times the
# seed-epochs per second at 256 seeds on 2 CPU cores (twice for the LSTM), with the same results
# (benchmarks/NOTES.md). XLA reads the option from XLA_FLAGS when its backend starts, so it holds
# for the whole process.
SMALL_LOOP_OPTION = "xla_cpu_small_while_loop_byte_threshold"
SMALL_LOOP_BYTES = 1 << 30
_EXTRA_OPTIONS = re.compile(r"--xla_backend_extra_options=(\S*)")

# Python's cyclic garbage collector, at its default thresholds, walks every object alive in a full
# collection, holding Python's lock: tracing and lowering a training program make hundreds of
# thousands of objects, so a cold default sweep spent about 3 s in 13 full collections of a fifth of
# a second each, stopping the threads that compile and the one that trains (benchmarks/NOTES.md).
# With fewer, later collections it spends about half a second. Reference counting still frees
# everything that is not in a cycle at once; cyclic garbage waits for the next collection.
COLLECTOR_THRESHOLDS = (10_000, 20, 20)

# The folder of traced programs that setup() turned on; fibjax.training.seeds.fit_seeds reads it.
# The one piece of process state fibjax keeps, set only by an explicit call, as JAX's own settings
# are.
_programs_dir: Path | None = None


def available_cores() -> int:
    """The CPU cores this process may run on: its affinity mask's, else the machine's.

    A job scheduler (a Slurm task's ``--cpus-per-task``, a container's CPU set, ``taskset``) gives
    a process some of a machine's cores through its affinity mask, while ``os.cpu_count()`` counts
    them all: on a 64-core node a 4-core task would have split the CPU into 64 devices, each a
    thread on the same 4 cores (on one core, the default comparison took 1.34 times as long
    with 8 devices as with one; benchmarks/NOTES.md).

    >>> available_cores() >= 1
    True
    """
    process_cpu_count = getattr(os, "process_cpu_count", None)  # Python 3.13
    if process_cpu_count is not None:
        return process_cpu_count() or 1
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # no affinity masks (macOS, Windows)
        return os.cpu_count() or 1


def default_cache_dir() -> Path | None:
    """Where compiled programs are kept: ``$FIBJAX_CACHE_DIR``, else ``~/.cache/fibjax/jax``.

    ``FIBJAX_CACHE_DIR=off`` (or empty) turns the cache off and gives ``None``.
    """
    if CACHE_ENV in os.environ:
        value = os.environ[CACHE_ENV].strip()
        return None if value.lower() in CACHE_OFF else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fibjax" / "jax"


def writable_cache(cache_dir: Path | None) -> Path | None:
    """``cache_dir`` if it can be created and written to; otherwise ``None``, said in one line.

    A cache that cannot be written would have JAX warn once a program (two dozen warnings in a
    comparison) and fibjax fail to keep its traced programs; the run goes on without it.
    """
    if cache_dir is None:
        return None
    from fibjax.results import storage

    try:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        storage.check_writable(Path(cache_dir))
    except OSError as error:
        print(
            f"fibjax: cache folder {cache_dir} cannot be written ({error.strerror or error});"
            " going on without the cache",
            file=sys.stderr,
        )
        return None
    return Path(cache_dir)


def xla_flags(flags: str) -> str:
    """``XLA_FLAGS`` with fibjax's limit for XLA's single-kernel CPU loops added.

    A limit set in ``flags`` already is kept; other backend options are kept beside fibjax's.

    >>> for flag in xla_flags("--xla_force_host_platform_device_count=2").split():
    ...     print(flag)
    --xla_force_host_platform_device_count=2
    --xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=1073741824
    >>> xla_flags("--xla_backend_extra_options=a=1,xla_cpu_small_while_loop_byte_threshold=0")
    '--xla_backend_extra_options=a=1,xla_cpu_small_while_loop_byte_threshold=0'
    >>> xla_flags("--xla_backend_extra_options=a=1")
    '--xla_backend_extra_options=a=1,xla_cpu_small_while_loop_byte_threshold=1073741824'
    """
    option = f"{SMALL_LOOP_OPTION}={SMALL_LOOP_BYTES}"
    if SMALL_LOOP_OPTION in flags:
        return flags
    found = _EXTRA_OPTIONS.search(flags)
    if found is None:
        return f"{flags} --xla_backend_extra_options={option}".strip()
    merged = f"{found.group(1)},{option}" if found.group(1) else option
    return flags[: found.start(1)] + merged + flags[found.end(1) :]


def collect_less() -> None:
    """Sets Python's cyclic garbage collector to :data:`COLLECTOR_THRESHOLDS`, for the process.

    >>> import gc
    >>> before = gc.get_threshold()
    >>> collect_less()
    >>> gc.get_threshold() == COLLECTOR_THRESHOLDS
    True
    >>> gc.set_threshold(*before)
    """
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def configure(
    *,
    cache_dir: Path | None,
    cpu_devices: int | None = None,
    option: str = "--cpu-devices",
    distributed: Any = None,
) -> bool:
    """Turns on JAX's persistent compilation cache, splits the CPU into devices, sets XLA's
    CPU loops to compile whole (:func:`xla_flags`) and Python's collector to run less often
    (:func:`collect_less`).

    Raises ``ValueError`` for an environment fibjax does not support (:func:`check_environment`).
    Returns ``False`` when JAX had started already, so its devices stayed as they were.

    Args:
      cache_dir: folder of the persistent compilation cache, or ``None`` to leave it off.
      cpu_devices: CPU devices to expose (default: one per core this process may run on,
        :func:`available_cores`), so that the seed axis is sharded over every core; XLA runs one
        training loop on one core.
      option: how errors name ``cpu_devices`` (the command line's option by default).
      distributed: a :class:`fibjax.cluster.distributed.DistributedConfig`; when enabled, this
        process joins the others (:func:`fibjax.cluster.distributed.initialize`) before JAX starts.
    """
    collect_less()
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(cache_dir))
        # The programs compile in about a second each; cache them all.
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    # Before JAX's backend starts, or XLA never reads it (then the devices say so below).
    os.environ["XLA_FLAGS"] = xla_flags(os.environ.get("XLA_FLAGS", ""))
    devices_set = True
    try:
        jax.config.update("jax_num_cpu_devices", cpu_devices or available_cores())
    except RuntimeError:
        devices_set = False
        # JAX has started already (fibjax.cli.entry.main called from a program that used JAX): its
        # devices stay as they are, which is only a mistake when other ones were asked for.
        if cpu_devices is not None and cpu_devices != len(jax.devices("cpu")):
            raise ValueError(
                f"{option}={cpu_devices}: JAX has started already with"
                f" {len(jax.devices('cpu'))} CPU device(s); set it before the first computation"
            ) from None
    if distributed is not None and distributed.enabled:
        from fibjax.cluster import distributed as distributed_lib

        distributed_lib.initialize(distributed)
    check_environment()
    return devices_set


@dataclasses.dataclass(frozen=True)
class Runtime:
    """What :func:`setup` did.

    Attributes:
      devices: the JAX devices in use (one per CPU core after a timely call).
      platform: JAX's default backend (``"cpu"``, ``"gpu"``...).
      cache_dir: the compilation cache's folder, or ``None`` when caching is off.
      programs_dir: the folder of traced programs (``programs`` in ``cache_dir``), or ``None``.
      started_late: JAX had started before the call, so its devices stayed as they were.
    """

    devices: int
    platform: str
    cache_dir: Path | None
    programs_dir: Path | None
    started_late: bool


_DEFAULT = object()


def setup(*, cpu_devices: int | None = None, cache_dir: Path | str | None = _DEFAULT) -> Runtime:
    """Splits the CPU into devices and turns the caches on, as the command line does.

    Call it first, before anything runs on JAX: the devices are fixed when JAX starts. Called
    later, it says so in one line on stderr and leaves the devices as they are (the caches are
    still turned on, for programs compiled from then on).

    Args:
      cpu_devices: CPU devices to expose (default: one per core this process may run on).
      cache_dir: the cache folder (default: ``$FIBJAX_CACHE_DIR``, else ``~/.cache/fibjax/jax``,
        as :func:`default_cache_dir` says), or ``None`` for no cache. Traced programs are kept
        in its ``programs`` sub-folder, which :func:`fibjax.training.seeds.fit_seeds` then uses.

    Returns:
      A :class:`Runtime` describing the devices and folders in use.

    Raises:
      ValueError: ``cpu_devices`` is not a positive integer, or differs from the devices JAX
        started with, or the environment is one fibjax does not support.
      OSError: the cache folder cannot be created.
    """
    global _programs_dir
    if cpu_devices is not None and (
        isinstance(cpu_devices, bool) or not isinstance(cpu_devices, int) or cpu_devices < 1
    ):
        raise ValueError(f"cpu_devices={cpu_devices!r} must be an integer >= 1")
    cache = default_cache_dir() if cache_dir is _DEFAULT else cache_dir
    cache = writable_cache(None if cache is None else Path(cache).expanduser())
    before = jax.config.jax_compilation_cache_dir
    devices_set = configure(cache_dir=cache, cpu_devices=cpu_devices, option="cpu_devices")
    jax_cache = cache
    if not devices_set and before and (cache is None or Path(before) != cache):
        # JAX reads its cache folder once, when it first compiles: a later call cannot move it.
        jax_cache = Path(before)
        print(
            f"fibjax.configure(): JAX had started already, with its compilation cache in"
            f" {before}; it stays there (JAX reads the folder once). Traced programs:"
            f" {'none kept' if cache is None else cache / PROGRAMS}",
            file=sys.stderr,
        )
    n_cpu = len(jax.devices("cpu"))
    cores = available_cores()
    if not devices_set and n_cpu != (cpu_devices or cores):
        print(
            f"fibjax.configure(): JAX had started already, with {n_cpu} CPU device(s) for"
            f" {cores} core(s); call it first, before any JAX computation (restart the"
            " kernel)",
            file=sys.stderr,
        )
    _programs_dir = None if cache is None else cache / PROGRAMS
    if _programs_dir is not None:
        from fibjax.results import storage

        storage.remove_stale_temporaries(_programs_dir)  # of runs killed while saving one
    n_devices = len(jax.devices())
    return Runtime(n_devices, jax.default_backend(), jax_cache, _programs_dir, not devices_set)


def programs_dir() -> Path | None:
    """The folder of traced programs that :func:`setup` turned on, or ``None``."""
    return _programs_dir


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


def devices_in_words(devices: Sequence[jax.Device] | None = None) -> str:
    """The devices a program runs on, for progress lines: ``"2 CPU devices"``, ``"1 NVIDIA H200"``.

    >>> devices_in_words(jax.devices("cpu")[:1])
    '1 CPU device'
    """
    devices = list(devices if devices is not None else jax.devices())
    if devices[0].platform == "cpu":
        return f"{len(devices)} CPU device{'s' if len(devices) != 1 else ''}"
    return f"{len(devices)} {devices[0].device_kind}"


def device_description() -> dict[str, object]:
    """The JAX backend and devices in use, for a run's record."""
    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "process_count": jax.process_count(),
    }
