"""One run across processes and hosts, with JAX's multi-controller runtime (``jax.distributed``).

Every process runs the same command; :func:`initialize` joins them, after which ``jax.devices()``
lists every process's devices and :func:`fibjax.training.seeds.compile_seeds` shards the seeds over
all of them. Process 0 decides what to train (it alone reads and writes the run folder) and
:meth:`Peers.share` tells the others; the results come back to every process from the
compiled call itself. :mod:`fibjax.cluster.supervisor` turns what the runtime does when a process is
lost (it aborts the others) into one line.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

OFF, AUTO, EXPLICIT = "off", "auto", "explicit"

# The environment variables that stand in for the command line's options.
ENV = {
    "distributed": "FIBJAX_DISTRIBUTED",
    "coordinator": "FIBJAX_COORDINATOR",
    "num_processes": "FIBJAX_NUM_PROCESSES",
    "process_id": "FIBJAX_PROCESS_ID",
    "join_timeout": "FIBJAX_JOIN_TIMEOUT",
    "heartbeat_timeout": "FIBJAX_HEARTBEAT_TIMEOUT",
}
OPTIONS = {name: "--" + name.replace("_", "-") for name in ENV}
MAX_TIMEOUT = 7 * 24 * 3600


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """How this process joins a run of several; validated when built.

    Attributes:
      mode: ``"off"`` (one process), ``"auto"`` (``jax.distributed.initialize()`` finds the
        set-up: Slurm, Open MPI, TPU pods) or ``"explicit"`` (the three fields below).
      coordinator: ``HOST:PORT`` of process 0, which listens there.
      num_processes: how many processes take part.
      process_id: this process's index, from 0.
      join_timeout: seconds to wait for every process to join.
      heartbeat_timeout: seconds after which a silent process counts as lost, and the others
        stop.
    """

    mode: str = OFF
    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    join_timeout: int = 300
    heartbeat_timeout: int = 100

    def __post_init__(self) -> None:
        if self.mode not in (OFF, AUTO, EXPLICIT):
            raise ValueError(f"--distributed={self.mode!r}: choose auto or off")
        for name in ("join_timeout", "heartbeat_timeout"):
            _check_int(name, getattr(self, name), 1, MAX_TIMEOUT)
        if self.mode == EXPLICIT:
            missing = [
                OPTIONS[name]
                for name in ("coordinator", "num_processes", "process_id")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    f"a run across processes needs --coordinator HOST:PORT, --num-processes N"
                    f" and --process-id I; missing {', '.join(missing)}"
                    " (or use --distributed auto under Slurm, Open MPI or a TPU pod)"
                )
        if self.coordinator is not None:
            self.address()  # validates it
        if self.num_processes is not None:
            _check_int("num_processes", self.num_processes, 1, 2**20)
        if self.process_id is not None:
            top = (self.num_processes or 2**20) - 1
            _check_int("process_id", self.process_id, 0, top)

    @property
    def enabled(self) -> bool:
        return self.mode != OFF

    def address(self) -> tuple[str, int]:
        """``(host, port)`` of the coordinator; IPv6 hosts in brackets, ``[::1]:1234``."""
        text = self.coordinator or ""
        host, sep, port = text.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(
                f"--coordinator={text!r}: give HOST:PORT, a host name or address and a port"
                " from 1 to 65535 (e.g. 10.0.0.1:12345)"
            )
        return host, int(port)


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{OPTIONS[name]}={value!r} must be an integer from {low} to {high}")
    if not low <= value <= high:
        raise ValueError(f"{OPTIONS[name]}={value!r} must be an integer from {low} to {high}")


def from_options(options: Mapping[str, Any], environ: Mapping[str, str] = os.environ):
    """A :class:`DistributedConfig` from options (``None`` when not given) and ``FIBJAX_*``.

    An option given on the command line wins over its environment variable. Giving
    ``--coordinator``, ``--num-processes`` or ``--process-id`` without ``--distributed auto``
    means an explicit set-up.

    >>> from_options({"distributed": None, "coordinator": "h:1", "num_processes": 2,
    ...               "process_id": 1}, environ={}).mode
    'explicit'
    >>> from_options({}, environ={"FIBJAX_DISTRIBUTED": "auto"}).mode
    'auto'
    """
    values: dict[str, Any] = {}
    for name, variable in ENV.items():
        value = options.get(name)
        if value is None and environ.get(variable, "").strip():
            value = environ[variable].strip()
            if name not in ("distributed", "coordinator"):
                if not value.lstrip("-").isdigit():
                    raise ValueError(f"{variable}={value!r} must be an integer")
                value = int(value)
        if value is not None:
            values[name] = value
    mode = str(values.pop("distributed", "")).lower()
    explicit = any(name in values for name in ("coordinator", "num_processes", "process_id"))
    if mode in ("", "none"):
        mode = EXPLICIT if explicit else OFF
    elif mode == OFF and explicit:
        raise ValueError(
            "--distributed off conflicts with --coordinator, --num-processes and --process-id"
        )
    return DistributedConfig(mode=mode, **values)


def check_reachable(config: DistributedConfig) -> None:
    """Refuses, before JAX starts, a coordinator whose host has no address or whose port is taken.

    Process 0 listens on the port: when another program holds it, the runtime would fail later
    with a longer message. Other processes only need the host to resolve; whether process 0
    answers is known when they join.
    """
    if config.coordinator is None:
        return
    host, port = config.address()
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise ValueError(
            f"--coordinator {config.coordinator}: host {host!r} not found ({error})"
        ) from None
    if config.process_id != 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("", port))
        except OSError as error:
            raise ValueError(
                f"--coordinator {config.coordinator}: process 0 cannot listen on port {port}"
                f" ({error.strerror or error}); choose a free port"
            ) from None


def initialize(config: DistributedConfig) -> None:
    """Joins this process to the others (``jax.distributed.initialize``); before JAX starts.

    CPU devices of different processes exchange results through Gloo. Raises ``ValueError``
    with one line when the runtime cannot start (a port in use, a bad address).
    """
    import jax

    check_reachable(config)
    # Collectives between the CPU devices of different processes (results gathered to all).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs: dict[str, Any] = {
        "initialization_timeout": config.join_timeout,
        "heartbeat_timeout_seconds": config.heartbeat_timeout,
    }
    if config.mode == EXPLICIT:
        kwargs.update(
            coordinator_address=config.coordinator,
            num_processes=config.num_processes,
            process_id=config.process_id,
        )
    try:
        jax.distributed.initialize(**kwargs)
    except (ValueError, RuntimeError, TypeError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        where = f" (coordinator {config.coordinator})" if config.coordinator else ""
        raise ValueError(f"cannot join the distributed run{where}: {first}") from None


class PeerError(Exception):
    """Process 0 refused the run; the message is its own."""


@dataclasses.dataclass(frozen=True)
class Peers:
    """This process among the others of a run: its index, their count, and what they share.

    In a run of one process, :meth:`share` hands the value back as it is.
    """

    index: int = 0
    count: int = 1

    @classmethod
    def of_jax(cls) -> Peers:
        """The processes that ``jax.distributed`` joined (one, when it was not initialized)."""
        import jax

        return cls(jax.process_index(), jax.process_count())

    @property
    def main(self) -> bool:
        """Whether this is process 0, which reads and writes the run's folder."""
        return self.index == 0

    def share(self, value: Any) -> Any:
        """Process 0's ``value`` (JSON-able), on every process; the others pass ``None``.

        >>> Peers().share({"out": "results/run"})
        {'out': 'results/run'}
        """
        if self.count == 1:
            return value
        import numpy as np
        from jax.experimental import multihost_utils

        data = json.dumps(value).encode() if self.main else b""
        size = int(multihost_utils.broadcast_one_to_all(np.int32(len(data))))
        buffer = np.zeros(size, np.uint8)
        if self.main:
            buffer[:] = np.frombuffer(data, np.uint8)
        received = multihost_utils.broadcast_one_to_all(buffer)
        return json.loads(np.asarray(received, np.uint8).tobytes().decode())

    def check_devices(self) -> None:
        """Refuses, on every process at once, processes with different numbers of devices.

        The seeds are sharded evenly over one mesh of every process's devices, which needs as
        many on each. Each process reads every process's count from ``jax.devices()``, so all of
        them stop with the same line and none waits on the others.

        Raises:
          ValueError: one line naming the counts.
        """
        if self.count == 1:
            return
        import collections

        import jax

        counts = collections.Counter(device.process_index for device in jax.devices())
        if len(set(counts.values())) > 1:
            kind = jax.devices()[0].platform.upper()
            have = ", ".join(f"process {index} has {counts[index]}" for index in sorted(counts))
            raise ValueError(
                f"the processes have different numbers of {kind} devices ({have}); start each"
                " with as many (--cpu-devices N on CPUs, whose default is one a core)"
            )

    def gather(self, value: Any) -> list[Any]:
        """Every process's (JSON-able) ``value``, in process order, on every process.

        >>> Peers().gather({"epochs": 2})
        [{'epochs': 2}]
        """
        if self.count == 1:
            return [value]
        import numpy as np
        from jax.experimental import multihost_utils

        data = np.frombuffer(json.dumps(value, sort_keys=True, default=str).encode(), np.uint8)
        sizes = np.asarray(multihost_utils.process_allgather(np.int32(data.size))).reshape(-1)
        padded = np.zeros(int(sizes.max()), np.uint8)
        padded[: data.size] = data
        rows = np.asarray(multihost_utils.process_allgather(padded))
        return [
            json.loads(row[:size].tobytes().decode()) for row, size in zip(rows, sizes, strict=True)
        ]

    def first_disagreement(self, settings: Mapping[str, Any]) -> tuple[int, str, Any, Any] | None:
        """Where the processes' ``settings`` differ from process 0's, the same on every process.

        Args:
          settings: what must be the same on every process (the command and its options).

        Returns:
          ``(process, name, process 0's value, its value)`` for the first process and setting
          that differ, or ``None`` when all agree.

        >>> Peers().first_disagreement({"epochs": 2}) is None
        True
        """
        everyone = self.gather(dict(settings))
        for index, other in enumerate(everyone[1:], start=1):
            # The command first: another command differs in most options.
            for name in sorted(set(everyone[0]) | set(other), key=lambda n: (n != "command", n)):
                if everyone[0].get(name) != other.get(name):
                    return index, name, everyone[0].get(name), other.get(name)
        return None

    def decide(self, make: Callable[[], Any], errors: tuple[type[Exception], ...] = ()) -> Any:
        """``make()`` on process 0, its (JSON-able) value on every process.

        An error of ``errors`` that ``make`` raises on process 0 is raised there and, as a
        :class:`PeerError` with its message, on every other process: none is left waiting.

        >>> Peers().decide(lambda: ["arm_a"])
        ['arm_a']
        """
        if self.count == 1:
            return make()
        if not self.main:
            shared = self.share(None)
            if "error" in shared:
                raise PeerError(f"process 0: {shared['error']}")
            return shared["value"]
        try:
            value = make()
        except errors as error:
            self.share({"error": str(error)})
            raise
        return self.share({"value": value})["value"]

    def finish(self) -> None:
        """Waits for every process to finish, then leaves the run (a clean end for all)."""
        if self.count > 1:
            import jax

            jax.distributed.shutdown()
