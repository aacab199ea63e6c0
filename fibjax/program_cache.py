"""Traced training programs kept on disk, so that a second run neither traces nor lowers them.

JAX's persistent compilation cache keeps compiled programs, but a run still has to trace and lower
its training program before it can look one up: about half a second for the attention model and a
quarter for the vanilla one, a sixth of a warm default comparison. This cache keeps the lowered
program itself (serialised with ``jax.export``), under a key that changes with everything the
program is traced from: fibjax's source, the versions of JAX, Flax and Optax, every JAX setting, the
training configuration, the data, the seed count and the devices. A file that cannot be read back is
traced again and replaced; a folder that cannot be written to is left alone. Settings made with
JAX's context managers (``with jax.default_matmul_precision(...)``) are not part of the key: the
command line makes none.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from fibjax import storage

SUFFIX = ".jaxexport"
_PACKAGE_DIR = Path(__file__).resolve().parent
_VERSIONED = ("jax", "jaxlib", "flax", "optax")


def source_digest() -> str:
    """SHA-256 of every module of the fibjax package and its sub-packages, in path order.

    Each module counts under its path inside the package (``models/cells.py``), so moving code
    between modules changes the digest too.
    """
    digest = hashlib.sha256()
    paths = sorted(_PACKAGE_DIR.rglob("*.py"), key=lambda p: p.relative_to(_PACKAGE_DIR).as_posix())
    for path in paths:
        digest.update(path.relative_to(_PACKAGE_DIR).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def array_digest(arrays: Sequence[np.ndarray]) -> str:
    """SHA-256 of arrays' dtypes, shapes and contents."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def versions(names: Sequence[str] = _VERSIONED) -> dict[str, str]:
    """The installed version of each package in ``names`` (``"absent"`` when not installed).

    >>> versions(["jax"]) == {"jax": jax.__version__}
    True
    """
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def program_key(parts: Mapping[str, Any]) -> str:
    """The cache key of a program traced from ``parts`` (JSON-ready) and the environment.

    >>> program_key({"model": "vanilla"}) == program_key({"model": "vanilla"})
    True
    >>> program_key({"model": "vanilla"}) == program_key({"model": "attention"})
    False
    """
    record = {
        "parts": dict(parts),
        "source": source_digest(),
        "versions": versions(),
        # Any JAX setting may change what tracing produces (x64, the PRNG, precision...).
        "jax_config": {name: repr(value) for name, value in sorted(jax.config.values.items())},
    }
    text = json.dumps(record, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def load_or_export(
    cache_dir: Path, key: str, export: Callable[[], jax.export.Exported]
) -> jax.export.Exported:
    """The program saved under ``key`` in ``cache_dir``, or ``export()``'s, saved there first.

    Args:
      cache_dir: the folder of saved programs (made when missing).
      key: from :func:`program_key`.
      export: traces and exports the program; called only when no readable file is saved.

    Returns:
      The exported program; call it through ``jax.jit(exported.call)``.
    """
    path = Path(cache_dir) / f"{key}{SUFFIX}"
    if path.exists():
        try:
            return jax.export.deserialize(bytearray(path.read_bytes()))
        except Exception:  # noqa: BLE001 - damaged, truncated or foreign: trace it again
            pass
    exported = export()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        storage.write_bytes(path, exported.serialize())
    except OSError:
        pass  # a cache that cannot be written (read-only, full) only costs the next run time
    return exported


def lower_cached(
    cache_dir: Path,
    parts: Mapping[str, Any],
    trace: Callable[[], Callable[..., Any]],
    *args: Any,
) -> jax.stages.Lowered:
    """Lowers the program that ``trace()`` returns for ``args``, through the cache.

    Args:
      cache_dir: the folder of saved programs.
      parts: what the program is traced from, besides the environment (see :func:`program_key`).
      trace: builds the jitted program; called only when no saved one can be read.
      *args: example arguments (shapes, dtypes and shardings are what matter).

    Returns:
      The lowered program, to compile (the compilation cache then holds the compiled one).
    """
    key = program_key(parts)
    exported = load_or_export(cache_dir, key, lambda: jax.export.export(trace())(*args))

    def saved_program(*call_args):
        return exported.call(*call_args)

    return jax.jit(saved_program).lower(*args)
