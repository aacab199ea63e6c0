"""One run across processes (jax.distributed): two local processes on 127.0.0.1, CPU and Gloo.

Every multi-process test is bounded in time: the processes run under ``timeout``, with short
join and heartbeat timeouts, so the suite cannot hang on a lost peer.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from fibjax.cli import entry
from fibjax.cluster import distributed, supervisor

from conftest import hooked_pythonpath

SMALL = ["--seeds", "6", "--epochs", "2", "--n-terms", "80", "--window", "6"]
LIMIT = 240  # seconds any one process may take


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fibjax(args, **env) -> subprocess.Popen:
    """``python -m fibjax ARGS``, started, with ``env`` added; its output in pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", "fibjax", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, FIBJAX_CACHE_DIR="off", **env),
    )


def joined(
    args, process_id: int, port: int, join_timeout: int = 60, devices: int = 1, **env
) -> subprocess.Popen:
    """``fibjax ARGS`` as process ``process_id`` of 2 on 127.0.0.1, with ``devices`` CPU devices."""
    return fibjax(
        [*args, "--cpu-devices", devices, "--coordinator", f"127.0.0.1:{port}"]
        + ["--num-processes", "2", "--process-id", process_id, "--heartbeat-timeout", 5]
        + ["--join-timeout", join_timeout],
        **env,
    )


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=LIMIT)
    return process.returncode, out, err


@pytest.mark.slow
@pytest.mark.parametrize(
    "command, table",
    [
        (["compare", *SMALL], "results.csv"),
        # The same machinery.
        (
            ["sweep", "--cell", "simple", "--models", "attention", "--window", "6"]
            + ["--scaling", "minmax", *SMALL],
            "sweep.csv",
        ),
    ],
    ids=["compare", "sweep"],
)
def test_two_processes_give_what_one_process_gives(command, table, tmp_path):
    # Against one process with one device; one process with 1, 2 or 4 devices gives the same
    # bits too (tests/test_seeds.py).
    port = free_port()
    two = [joined([*command, "--out", tmp_path / "two"], i, port) for i in range(2)]
    # One process with one device, in this one while the two run (a process adds nothing here).
    one = [*command, "--out", tmp_path / "one", "--cpu-devices", "1", "--no-cache"]
    assert entry.main([str(arg) for arg in one]) == 0
    done = [finish(p) for p in two]
    for status, _, err in done:
        assert status == 0, err
    (_, main_out, _), (_, other_out, other_err) = done
    assert "Report:" in main_out
    # The other process trains its share, writes nothing and says where process 0 wrote.
    assert other_out.strip() == (
        f"process 1 of 2: trained its share of the seeds; process 0 wrote the results to"
        f" {tmp_path / 'two'}"
    )
    assert other_err == ""
    # Bit for bit, however the seeds were spread over processes and devices.
    assert (tmp_path / "one" / table).read_bytes() == (tmp_path / "two" / table).read_bytes()


# Process 1 started otherwise than process 0: (its arguments, its devices, what both say).
MISMATCHES = {
    "devices": ([], 2, "process 0 has 1, process 1 has 2"),
    "epochs": (["--epochs", "3"], 1, "process 1 has --epochs 3, process 0 --epochs 2"),
    "out": (["--out", "elsewhere"], 1, "process 1 has --out"),
    "command": (["sweep"], 1, "process 1 runs fibjax sweep, process 0 fibjax compare"),
}


@pytest.mark.slow
def test_processes_started_differently_stop_together_in_one_line(tmp_path):
    # Each pair would have trained process 0's configuration, crashed on a reshape, or waited
    # for a message never sent: now both processes stop before any work, saying what differs.
    runs = {}
    for name, (other, devices, _) in MISMATCHES.items():
        port, out = free_port(), tmp_path / name
        first = ["compare", *SMALL, "--out", out]
        second = ["sweep", *SMALL, "--out", out] if other == ["sweep"] else [*first, *other]
        runs[name] = [joined(first, 0, port), joined(second, 1, port, devices=devices)]
    for name, processes in runs.items():
        for status, _, err in map(finish, processes):
            lines = err.strip().splitlines()
            assert status == 2, (name, err)
            assert MISMATCHES[name][2] in lines[-1] and "Traceback" not in err, (name, err)
        assert not (tmp_path / name).exists()


# Run first by the Python of process 1 (hooked_pythonpath): it reaches the check of the devices
# 3 s after process 0, as a loaded machine once made it.
_SLOW_PEER = """
import fibjax.cluster.distributed as distributed, time
check = distributed.Peers.check_devices
def slow_check(self):
    if self.index == 1:
        time.sleep(3)
    return check(self)
distributed.Peers.check_devices = slow_check
"""


@pytest.mark.slow
def test_a_refusal_reaches_a_process_that_comes_late(tmp_path):
    # Process 0, which hosts the run's connection, refused and left at once: JAX then aborted
    # process 1 on its way to the same refusal, which said "process 0 ... was lost" instead.
    path = hooked_pythonpath(tmp_path / "hook", _SLOW_PEER)
    port, args = free_port(), ["compare", *SMALL, "--out", tmp_path / "run"]
    processes = [joined(args, 0, port), joined(args, 1, port, devices=2, PYTHONPATH=path)]
    for status, _, err in map(finish, processes):
        assert status == 2, err
        assert MISMATCHES["devices"][2] in err.strip().splitlines()[-1], err


@pytest.mark.slow
def test_a_lost_process_stops_the_other_and_resume_finishes(tmp_path):
    out = tmp_path / "run"
    args = ["compare", *SMALL, "--out", out]
    port = free_port()
    main, other = joined(args, 0, port), joined(args, 1, port)
    try:
        # Process 0 prints its phases; once the first arm trains, the second is still to come.
        lines = []
        for line in main.stderr:
            lines.append(line)
            if line.startswith("training"):
                break
        other.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        status = main.wait(timeout=60)
        waited = time.monotonic() - killed_at
        lines += main.stderr.readlines()
    finally:
        for process in (main, other):
            if process.poll() is None:
                process.kill()
    err = "".join(lines)
    assert status == 1, err
    assert waited < 40  # the heartbeat timeout (5 s) and the runtime's reaction
    last = lines[-1]
    assert last.startswith("fibjax: error: process 0 of 2 stopped: process 1 was lost"), err
    assert f"fibjax compare --resume {out}" in last
    assert "Traceback" not in err
    # Only whole files: run.json, and an arm only if it was saved before the loss.
    names = sorted(p.name for p in out.iterdir())
    assert set(names) <= {"run.json", "arm_attention.npz", "arm_vanilla.npz"}, names
    assert "arm_vanilla.npz" not in names  # the second arm was never trained
    resumed = entry.main(["compare", "--resume", str(out), "--no-cache"])
    assert resumed == 0
    assert (out / "results.csv").exists()


@pytest.mark.slow
def test_a_process_that_never_joins_gives_one_line(tmp_path):
    out = tmp_path / "run"
    alone = joined(["compare", *SMALL, "--out", out], 0, free_port(), join_timeout=3)
    status = alone.wait(timeout=LIMIT)
    _, err = alone.communicate()
    assert status == 2
    assert err.strip().splitlines() == [err.strip()]
    assert "did not all join in time" in err
    assert not out.exists()


def test_a_port_in_use_or_a_bad_coordinator_gives_one_line(capsys):
    with socket.socket() as holder:
        holder.bind(("", 0))
        holder.listen()
        port = holder.getsockname()[1]
        where = ["--num-processes", "2", "--process-id", "0"]
        assert entry.main(["compare", "--coordinator", f"127.0.0.1:{port}", *where]) == 2
    assert "cannot listen on port" in capsys.readouterr().err
    for coordinator, message in [
        ("no-such-host.invalid:1234", "not found"),
        ("127.0.0.1:99999", "HOST:PORT"),
        ("127.0.0.1", "HOST:PORT"),
    ]:
        assert entry.main(["sweep", "--coordinator", coordinator, *where]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize(
    "options, environ, message",
    [
        ({"coordinator": "h:1"}, {}, "missing --num-processes, --process-id"),
        ({"coordinator": "h:1", "num_processes": 2, "process_id": 2}, {}, "process-id"),
        ({"num_processes": 0, "process_id": 0, "coordinator": "h:1"}, {}, "num-processes"),
        ({"distributed": "off", "coordinator": "h:1"}, {}, "conflicts"),
        ({}, {"FIBJAX_NUM_PROCESSES": "two"}, "FIBJAX_NUM_PROCESSES"),
        ({"distributed": "auto", "heartbeat_timeout": 0}, {}, "heartbeat-timeout"),
    ],
)
def test_bad_distributed_options(options, environ, message):
    with pytest.raises(ValueError, match=message):
        distributed.from_options(options, environ=environ)


def test_options_win_over_the_environment():
    environ = {
        "FIBJAX_COORDINATOR": "a:1",
        "FIBJAX_NUM_PROCESSES": "4",
        "FIBJAX_PROCESS_ID": "3",
        "FIBJAX_HEARTBEAT_TIMEOUT": "7",
    }
    config = distributed.from_options({"process_id": 1}, environ=environ)
    assert config == distributed.DistributedConfig("explicit", "a:1", 4, 1, 300, 7)
    assert config.address() == ("a", 1)
    assert distributed.from_options({}, environ={}).enabled is False
    auto = distributed.from_options({"distributed": "auto"}, environ={})
    assert (auto.mode, auto.coordinator) == ("auto", None)
    assert distributed.DistributedConfig(coordinator="[::1]:80").address() == ("::1", 80)


@pytest.mark.parametrize(
    "log, status, words",
    [
        (
            "E1128 coordination_service.cc] The following tasks are unhealthy (stopped sending"
            " heartbeats):\n2\n3\nThe tasks have crashed.",
            1,
            "processes 2, 3 were lost",
        ),
        (
            "F1128 client.h:80] Terminating process ... UNAVAILABLE: Failed to send RPC to"
            " coordination service. Either the leader task was preempted/died/restarted",
            1,
            "process 0, the coordinator, was lost",
        ),
        (
            "F1128 client.h:80] DEADLINE_EXCEEDED: Deadline Exceeded\nRPC:"
            " /xla.coordination.CoordinationService/RegisterTask",
            2,
            "did not all join",
        ),
        ("", 1, "stopped by signal SIGKILL"),
    ],
)
def test_what_the_runtime_says_becomes_one_line(log, status, words):
    code, line = supervisor.diagnose(log, "process 1 of 4", signal.SIGKILL)
    assert code == status
    assert words in line and "\n" not in line


def test_one_process_decides_alone():
    peers = distributed.Peers()
    assert peers.main and peers.decide(lambda: {"todo": ["a"]}) == {"todo": ["a"]}
    with pytest.raises(KeyError):
        peers.decide(lambda: {}["missing"], (KeyError,))


@pytest.mark.slow
def test_sigterm_stops_every_process_and_says_what_was_saved(tmp_path):
    # As a cluster stops a job (scancel, preemption): SIGTERM to every process. Each stops as
    # Ctrl-C stops it, within the heartbeat's bound, instead of training to the end.
    out = tmp_path / "run"
    port = free_port()
    processes = [joined(["compare", *SMALL, "--out", out], i, port) for i in range(2)]
    try:
        for line in processes[0].stderr:
            if line.startswith("training"):
                break
        sent = time.monotonic()
        for process in processes:
            process.send_signal(signal.SIGTERM)
        done = [finish(process) for process in processes]
        waited = time.monotonic() - sent
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert waited < 40
    (status, _, err), (other_status, _, other_err) = done
    assert status != 0 and other_status != 0, err
    assert "interrupted" in err and "Traceback" not in err
    # Each process says how to continue: every process again, with its distributed options.
    for text in (err, other_err):
        assert "--resume" in text and "with the same distributed options" in text, text
        assert "lost" not in text, text
    assert not (out / "summary.json").exists()
