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

Within a process, :data:`COMPILED` keeps the last few compiled programs themselves (a
:class:`ProgramMemo`), so that calling :func:`fibjax.training.seeds.fit_seeds` again with the same
configuration, data shapes and seed count runs at once, with neither tracing nor compiling.
"""

from __future__ import annotations

import collections
import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from fibjax.results import provenance, storage

SUFFIX = ".jaxexport"
_VERSIONED = ("jax", "jaxlib", "flax", "optax")


def array_digest(arrays: Sequence[np.ndarray]) -> str:
    """SHA-256 of arrays' dtypes, shapes and contents."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def program_key(parts: Mapping[str, Any]) -> str:
    """The cache key of a program traced from ``parts`` (JSON-ready) and the environment.

    >>> program_key({"model": "vanilla"}) == program_key({"model": "vanilla"})
    True
    >>> program_key({"model": "vanilla"}) == program_key({"model": "attention"})
    False
    """
    record = {
        "parts": dict(parts),
        "source": provenance.source_digest(),
        "versions": provenance.versions(_VERSIONED),
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


class ProgramMemo:
    """The most recently used compiled programs of this process, by key; at most ``maxsize``.

    A compiled program holds its executable (a few MB): the memo is bounded, and the least
    recently used one is dropped when a new one would exceed ``maxsize``.

    >>> memo = ProgramMemo(maxsize=2)
    >>> memo.put("a", 1); memo.put("b", 2); memo.get("a"); memo.put("c", 3)
    1
    >>> memo.get("b") is None, len(memo)
    (True, 2)
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 0:
            raise ValueError(f"maxsize={maxsize!r} must be >= 0")
        self.maxsize = maxsize
        self._items: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._making: dict[str, threading.Lock] = {}

    def get(self, key: str) -> Any | None:
        """The program kept under ``key`` (now the most recently used), or ``None``."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def get_or_make(self, key: str, make: Callable[[], Any]) -> Any:
        """The program kept under ``key``, or ``make()``'s, kept first.

        Threads asking for the same key at once wait for one ``make()`` (a sweep compiles
        programs in threads, and two of them may need the same one).
        """
        with self._lock:
            key_lock = self._making.setdefault(key, threading.Lock())
        try:
            with key_lock:
                found = self.get(key)
                if found is None:
                    found = make()
                    self.put(key, found)
        finally:
            with self._lock:
                if not key_lock.locked():
                    self._making.pop(key, None)
        return found

    def put(self, key: str, program: Any) -> None:
        """Keeps ``program`` under ``key``, dropping the least recently used beyond ``maxsize``."""
        with self._lock:
            self._items[key] = program
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Drops every kept program (their memory is freed once nothing else holds them)."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


# Eight programs: both arms of a comparison at a few seed counts or data shapes. Each holds a
# compiled executable of a few MB; fibjax.training.program_cache.COMPILED.clear() frees them.
COMPILED = ProgramMemo(maxsize=8)
# The orders of the training windows last drawn ahead (fibjax.training.seeds.SeedOrders), by
# seeds and shapes: a comparison's models, and a sweep's at each of its (three by default)
# windows, train on the same seeds and read the same orders. A set is at most
# fibjax.training.layout.ORDERS_AHEAD_BYTES (about 3 MB for the default comparison).
ORDERS = ProgramMemo(maxsize=3)
# The programs that draw initial weights (fibjax.training.initial), with the shapes of what they
# draw, kept apart from COMPILED: a sweep asks for a model's again at each of its windows, with
# other training programs between. Each is small (tens of kB).
INITIALS = ProgramMemo(maxsize=32)


def memo_key(parts: Mapping[str, Any], devices: Sequence[Any], folder: Path | None) -> str:
    """The :data:`COMPILED` key of a program traced from ``parts`` for ``devices``.

    Besides ``parts``, it holds the devices themselves (a program is compiled for a mesh of
    them), the folder of saved programs it came through (a saved program is compiled from its
    serialised form, which may round differently from a fresh trace) and every JAX setting.
    fibjax's source is not in it: a process runs the modules it imported.
    """
    record = {
        "parts": dict(parts),
        "device_ids": [d.id for d in devices],
        "folder": None if folder is None else str(Path(folder).resolve()),
        "jax_config": {name: repr(value) for name, value in sorted(jax.config.values.items())},
    }
    return json.dumps(record, sort_keys=True, default=repr)
