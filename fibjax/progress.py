"""A one-line progress display on the terminal while programs compile and train."""

from __future__ import annotations

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
