"""Progress while programs compile and train: a line on the terminal, a widget in Jupyter.

:class:`Progress` is the command line's line on stderr; :class:`Phases` is the Python API's, drawn
by ``tqdm.auto`` (a notebook widget where ipywidgets is installed, text elsewhere).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import TextIO


class Progress:
    """Shows the current phase and its elapsed time.

    On a terminal the line is redrawn a few times a second; elsewhere (a log file, CI) each phase
    is printed once, so logs stay short.
    """

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._text = ""
        self._start = time.perf_counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.live:
            self._thread = threading.Thread(target=self._redraw_loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stops redrawing and clears the line."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._write("\r\033[K")

    def phase(self, text: str) -> None:
        """Starts a phase (``"compiling vanilla"``)."""
        with self._lock:
            self._text = text
            self._start = time.perf_counter()
        if not self.live:
            self._write(f"{text} ...\n")

    def _redraw_loop(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                elapsed = time.perf_counter() - self._start
                line = f"{self._text} {elapsed:5.1f} s"
            self._write(f"\r\033[K{line}")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython with a kernel attached)."""
    if "IPython" not in sys.modules:  # not imported: not a kernel, and no import cost here
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Phases:
    """The phases of one long call (``"compiling"``, ``"training"``) and each one's elapsed time.

    One ``tqdm.auto`` bar whose description is the current phase; a thread redraws it twice a
    second, since a compiled call reports nothing until it returns. Each phase counts one step.

    Args:
      show: draw the bar; ``None``: only inside a Jupyter kernel (:func:`in_notebook`).
      total: the number of phases, for the bar's length.

    >>> with Phases(show=False) as phases:
    ...     phases.phase("compiling")
    """

    def __init__(self, *, show: bool | None = None, total: int = 2) -> None:
        self.show = in_notebook() if show is None else show
        self.total = total
        self._bar = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Phases:
        if self.show:
            with warnings_off():
                from tqdm.auto import tqdm

                self._bar = tqdm(total=self.total, bar_format="{desc} {elapsed}", leave=True)
            if self._bar is not None:
                self._thread = threading.Thread(target=self._redraw_loop, daemon=True)
                self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._bar.close()

    def phase(self, text: str) -> None:
        """Starts a phase; the previous one counts as done."""
        if self._bar is not None:
            if self._bar.desc:
                self._bar.update(1)
            self._bar.set_description_str(text)

    def _redraw_loop(self) -> None:
        while not self._stop.wait(0.5):
            self._bar.refresh()


@contextlib.contextmanager
def warnings_off():
    """tqdm.auto warns once, in a notebook without ipywidgets, before falling back to text."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
