"""Training programs compiled ahead, in threads, while the ones before them train.

XLA's compiler releases the GIL, so a study compiles its next programs while it trains one, or
compiles several at once (on 2 cores, two at once took 1.07-1.16 times less than one after
another; benchmarks/NOTES.md). :func:`compile_workers` says how many at once;
:class:`CompilesAhead` compiles them in order and hands each over when the study reaches it.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from typing import Any

from fibjax.cluster.distributed import Peers
from fibjax.training.runtime import available_cores


def compile_workers(n_programs: int, peers: Peers, cores: int | None = None) -> int:
    """Programs compiled at once: one for every two cores (at least two), else one.

    ``cores``: the cores to count (default: those this process may run on,
    :func:`fibjax.training.runtime.available_cores`).

    XLA's CPU compiler runs about 1.4 cores for one program (measured on 2 cores,
    benchmarks/NOTES.md), so a program for every two cores keeps them busy, beside the training
    (on 2 cores, a sweep compiling one or two at once took the same time; more cores were not
    measured). Each program ahead is held in memory (a few MB) until its arms train. A run
    across processes compiles in order, as every process must build the same programs in the
    same order.

    >>> compile_workers(24, Peers(), cores=16), compile_workers(24, Peers(), cores=2)
    (8, 2)
    >>> compile_workers(24, Peers(index=0, count=2), cores=16), compile_workers(1, Peers())
    (1, 1)
    """
    if peers.count > 1 or n_programs < 2:
        return 1
    cores = cores or available_cores()
    return min(n_programs, max(2, cores // 2))


class CompilesAhead:
    """``compile(index)`` for ``index`` from 0 to ``n - 1``, in threads, in order.

    At most ``workers`` programs are compiling or waiting beyond the one last handed over by
    :meth:`get`. Use it as a context manager: leaving it cancels what has not started and waits
    for what has.

    >>> with CompilesAhead(lambda index: index * index, 3, workers=2) as programs:
    ...     [programs.get(index)[0] for index in range(3)]
    [0, 1, 4]

    Attributes:
      wait_s: seconds :meth:`get` waited for programs not yet compiled.
    """

    def __init__(self, compile: Callable[[int], Any], n: int, workers: int) -> None:
        self.compile, self.n, self.workers = compile, n, max(1, workers)
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="fibjax-compile"
        )
        self.futures: dict[int, concurrent.futures.Future] = {}
        self.wait_s = 0.0

    def __enter__(self) -> CompilesAhead:
        for index in range(min(self.workers, self.n)):
            self._submit(index)
        return self

    def __exit__(self, *exc_info) -> None:
        for future in self.futures.values():
            future.cancel()
        self.pool.shutdown(wait=True)

    def _submit(self, index: int) -> None:
        if index < self.n and index not in self.futures:
            self.futures[index] = self.pool.submit(self._timed, index)

    def _timed(self, index: int) -> tuple[Any, float]:
        start = time.perf_counter()
        program = self.compile(index)
        return program, time.perf_counter() - start

    def get(self, index: int, progress: Any = None, what: str = "") -> tuple[Any, float]:
        """Program ``index`` and the seconds it took to compile, once compiled; the next one
        starts compiling. While it waits, ``progress`` (a
        :class:`fibjax.training.progress.Progress`, or ``None``) shows ``what`` as its phase."""
        future = self.futures.pop(index)
        if progress is not None and not future.done():
            progress.phase(what)
        start = time.perf_counter()
        program, seconds = future.result()
        self.wait_s += time.perf_counter() - start
        self._submit(index + self.workers)
        return program, seconds
