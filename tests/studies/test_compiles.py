"""Programs compiled ahead in threads: in order, a bounded number ahead, errors where asked."""

import os
import threading

import pytest

from fibjax.cluster.distributed import Peers
from fibjax.data import DataConfig
from fibjax.studies import compare as compare_lib
from fibjax.studies.compiles import CompilesAhead, compile_workers
from fibjax.training import runtime


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity masks here")
def test_cores_are_those_the_process_may_run_on(monkeypatch):
    # A Slurm task of 4 cores on a 64-core node: its affinity mask holds 4 of them.
    monkeypatch.delattr(os, "process_cpu_count", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {8, 9, 10, 11})
    assert runtime.available_cores() == 4
    assert compile_workers(24, Peers()) == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    assert compile_workers(24, Peers()) == 8


def test_cores_without_affinity_masks_are_the_machine_s(monkeypatch):
    monkeypatch.delattr(os, "process_cpu_count", raising=False)
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert runtime.available_cores() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # undeterminable, as Python allows
    assert runtime.available_cores() == 1


def test_programs_come_in_order_and_at_most_workers_ahead():
    started, release = [], {index: threading.Event() for index in range(5)}

    def compile(index):
        started.append(index)
        release[index].wait(timeout=10)
        return f"program {index}"

    with CompilesAhead(compile, 5, workers=2) as programs:
        got = []
        for index in range(5):
            release[index].set()
            got.append(programs.get(index)[0])
            # Handed over: the program after the next two may start, none beyond it.
            assert max(started) <= index + 2
    assert got == [f"program {index}" for index in range(5)]
    assert sorted(started) == list(range(5))


def test_a_failed_compilation_is_raised_where_its_program_is_asked_for():
    def compile(index):
        if index == 1:
            raise ValueError("cannot fit")
        return index

    with CompilesAhead(compile, 3, workers=2) as programs:
        assert programs.get(0)[0] == 0
        with pytest.raises(ValueError, match="cannot fit"):
            programs.get(1)


def test_a_comparison_compiles_its_second_model_while_the_first_trains(tmp_path, monkeypatch):
    events, lock = [], threading.Lock()
    compile_seeds, train_arm = compare_lib.compile_seeds, compare_lib.train_arm

    def compiling(config, *args, **kwargs):
        with lock:
            events.append(("compile", config.model))
        return compile_seeds(config, *args, **kwargs)

    def training(config, data, label, *args, **kwargs):
        with lock:
            events.append(("train", label))
        return train_arm(config, data, label, *args, **kwargs)

    monkeypatch.setattr(compare_lib, "compile_seeds", compiling)
    monkeypatch.setattr(compare_lib, "train_arm", training)
    data = DataConfig(n_terms=60, window=5)
    config = compare_lib.CompareConfig(seeds=(0, 1), data=data, epochs=1)
    compare_lib.prepare_out_dir(tmp_path / "run", config, {})
    assert set(compare_lib.run_comparison(tmp_path / "run")) == {"attention", "vanilla"}
    assert events.index(("compile", "vanilla")) < events.index(("train", "attention"))
