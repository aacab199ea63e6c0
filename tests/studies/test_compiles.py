"""Programs compiled ahead in threads: in order, a bounded number ahead, errors where asked."""

import threading

import pytest

from fibjax.data import DataConfig
from fibjax.studies import compare as compare_lib
from fibjax.studies.compiles import CompilesAhead


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
