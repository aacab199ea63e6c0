"""Runs one process of a distributed run as a child, and says in one line why it stopped.

When a process of a ``jax.distributed`` run is lost, or never joins, JAX's runtime ends the
others with an abort and a native stack trace, which no Python code can catch. So ``fibjax``
with a distributed option starts itself again as a worker child: the worker's own output
(Python's ``sys.stdout`` and ``sys.stderr``) goes to the terminal as usual, while what the
native runtime writes (file descriptors 1 and 2: its log, Gloo's lines) goes to a pipe that
this parent keeps. When the worker dies by a signal, the
parent reads that log, prints one line naming the lost process, removes the worker's
temporary files from the run folder, and exits 1 (2 when the processes never all joined).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from fibjax.results import storage

WORKER_ENV = "FIBJAX_WORKER_STREAMS"  # the terminal's stdout and stderr, in a worker
LOG_KEPT = 1 << 20  # the last bytes of the native log kept for the diagnosis

# What JAX's coordination service says, in the log of a process it ends.
_UNHEALTHY = re.compile(r"tasks are unhealthy \(stopped sending heartbeats\):\s*([\d\s,]+)")
_LEADER_LOST = re.compile(r"leader task was preempted/died|Failed to send RPC to coordination")
_NOT_JOINED = re.compile(r"RegisterTask")


def attach_worker_streams() -> bool:
    """In a worker, sends Python's ``sys.stdout`` and ``sys.stderr`` to the parent's terminal.

    The native runtime keeps writing to file descriptors 1 and 2 (its log, Gloo's lines), which
    the parent reads. Also ends the worker when its parent is gone (killed), so that a lost
    process is lost whole and the others notice it. Returns whether this process is a worker.
    """
    fds = os.environ.pop(WORKER_ENV, None)
    if fds is None:
        return False
    out, err = (int(fd) for fd in fds.split(","))
    sys.stdout = open(out, "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    sys.stderr = open(err, "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    parent = os.getppid()

    def watch() -> None:
        while True:
            threading.Event().wait(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="fibjax-parent-watch", daemon=True).start()
    return True


class _LogTail:
    """Reads a pipe to its end in a thread, keeping the last :data:`LOG_KEPT` bytes."""

    def __init__(self, pipe) -> None:
        self.data = bytearray()
        self.thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.thread.start()

    def _read(self, pipe) -> None:
        for chunk in iter(lambda: pipe.read1(65536), b""):
            self.data += chunk
            del self.data[:-LOG_KEPT]

    def text(self) -> str:
        self.thread.join(timeout=5)
        return self.data.decode("utf-8", "replace")


def supervise(
    argv: list[str],
    process: str,
    out_dir: Path | None,
    resume: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> int:
    """Runs ``fibjax argv`` as a worker child; returns its exit status, or 1/2 after one line.

    Args:
      argv: the command line's arguments (without the program name).
      process: how this process is named in messages (``"process 1 of 2"``).
      out_dir: the run folder, when this process's options name it: where a lost worker's
        temporary files are removed.
      resume: the command that continues the run, for the message.
      extra_env: more environment variables for the worker.
    """
    sys.stdout.flush()
    terminal = (os.dup(1), os.dup(2))
    env = dict(os.environ, **(extra_env or {}), **{WORKER_ENV: ",".join(map(str, terminal))})
    # The worker imports this same fibjax, installed or not (experiments/ scripts add its path).
    here = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    child = subprocess.Popen(
        [sys.executable, "-m", "fibjax", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        pass_fds=terminal,
    )
    for fd in terminal:
        os.close(fd)
    log = _LogTail(child.stdout)
    forwarded = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    # Ctrl-C reaches the worker from the terminal itself; other signals are passed on.
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    received: list[int] = []

    def forward(signum, frame) -> None:
        received.append(signum)
        child.send_signal(signum)

    for sig in forwarded:
        signal.signal(sig, forward)
    try:
        status = child.wait()
    finally:
        signal.signal(signal.SIGINT, previous_int)
        for sig, handler in forwarded.items():
            signal.signal(sig, handler)
    if status >= 0:
        return status
    if out_dir is not None:
        storage.remove_stale_temporaries(Path(out_dir))  # of the worker, killed while writing
    text = log.text()
    if received:
        # Stopped from outside (scancel, kill): the worker may have died of the coordinator's
        # end before it could say so, but the cause is the signal, not a lost process.
        name = signal.Signals(received[0]).name
        where = f" in {out_dir}" if out_dir is not None else ""
        again = f"; continue with: {resume}" if resume else ""
        print(
            f"fibjax: interrupted; {process} stopped by {name}; the saved results{where} are"
            f" kept{again}",
            file=sys.stderr,
        )
        return 128 + received[0]
    code, line = diagnose(text, process, -status)
    if code == 1 and resume:
        line = line.replace("continue with --resume", f"continue with: {resume}")
    saved = _save_log(text)
    print(f"fibjax: error: {line}{f' (JAX log: {saved})' if saved else ''}", file=sys.stderr)
    return code


def diagnose(log: str, process: str, signum: int) -> tuple[int, str]:
    """The exit status and one line for a worker that died by ``signum`` after writing ``log``.

    >>> log = "... tasks are unhealthy (stopped sending heartbeats):\\n1\\nThe tasks have crashed"
    >>> diagnose(log, "process 0 of 2", 6)[1].split(";")[0]
    'process 0 of 2 stopped: process 1 was lost (no heartbeat)'
    """
    if _NOT_JOINED.search(log):
        return 2, (
            f"{process} stopped: the processes did not all join in time (is every process"
            " started, with the same --num-processes, and is --coordinator process 0's"
            " address?)"
        )
    unhealthy = _UNHEALTHY.search(log)
    if unhealthy:
        ids = ", ".join(re.findall(r"\d+", unhealthy.group(1)))
        lost = f"process {ids} was" if "," not in ids else f"processes {ids} were"
        return 1, (
            f"{process} stopped: {lost} lost (no heartbeat); the saved results are kept,"
            " continue with --resume"
        )
    if _LEADER_LOST.search(log):
        return 1, (
            f"{process} stopped: process 0, the coordinator, was lost; the results it saved"
            " are kept, continue with --resume"
        )
    name = signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else signum
    return 1, f"{process} stopped by signal {name}"


def _save_log(text: str) -> str | None:
    """Keeps the native log in a temporary file for whoever wants the details; its path."""
    if not text.strip():
        return None
    try:
        handle, path = tempfile.mkstemp(prefix="fibjax-jax-", suffix=".log")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
    except OSError:
        return None
    return path
