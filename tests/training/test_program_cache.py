"""Traced training programs kept on disk: same results, no tracing on a hit, safe misses."""

import concurrent.futures
import threading
import time

import chex
import jax
import numpy as np
import pytest

from fibjax.data import fibonacci_windows
from fibjax.results import provenance
from fibjax.training import initial as initial_lib
from fibjax.training import program_cache
from fibjax.training import seeds as seeds_lib
from fibjax.training.config import TrainConfig
from fibjax.training.program_cache import ProgramMemo
from fibjax.training.seeds import compile_seeds

SMALL = fibonacci_windows(n_terms=80, window=6)
CONFIG = TrainConfig("attention", epochs=2)
SEEDS = [0, 1, 2]


@pytest.fixture(autouse=True)
def no_compiled_programs_kept(monkeypatch):
    # These tests are of the folder, which serves new processes: each call here is one.
    monkeypatch.setattr(program_cache, "COMPILED", program_cache.ProgramMemo(maxsize=0))
    monkeypatch.setattr(program_cache, "INITIALS", program_cache.ProgramMemo(maxsize=0))


def _programs(folder):
    """The saved programs: a model's training and its initial weights' (CPU layout)."""
    return sorted(folder.glob(f"*{program_cache.SUFFIX}"))


def test_a_cached_program_gives_the_same_results(tmp_path):
    direct = compile_seeds(CONFIG, SMALL, SEEDS)()
    first = compile_seeds(CONFIG, SMALL, SEEDS, program_cache=tmp_path)()
    again = compile_seeds(CONFIG, SMALL, SEEDS, program_cache=tmp_path)()
    assert len(_programs(tmp_path)) == 2
    chex.assert_trees_all_close(first, direct, atol=1e-6)
    chex.assert_trees_all_equal(again, first)


def test_a_hit_does_not_trace(tmp_path, monkeypatch):
    compile_seeds(CONFIG, SMALL, SEEDS, program_cache=tmp_path)

    def no_tracing(*args, **kwargs):
        raise AssertionError("traced although the program was saved")

    monkeypatch.setattr(seeds_lib, "make_train_on", no_tracing)
    monkeypatch.setattr(initial_lib, "make_model", no_tracing)  # nor the initial weights'
    result = compile_seeds(CONFIG, SMALL, SEEDS, program_cache=tmp_path)()
    chex.assert_shape(result.test_mse, (len(SEEDS),))
    with pytest.raises(AssertionError, match="traced"):  # a miss does trace
        compile_seeds(TrainConfig("vanilla", epochs=2), SMALL, SEEDS, program_cache=tmp_path)


# The initial weights' program depends on the seed count, not on the epochs or the windows' count:
# a change of those saves a training program only.
@pytest.mark.parametrize(
    "change, saved",
    [
        ({"config": TrainConfig("attention", epochs=3)}, 3),
        ({"data": fibonacci_windows(n_terms=81, window=6)}, 3),
        # Enough seeds to change the padded count (at least 32 a device,
        # fibjax.training.layout.MIN_CHUNK).
        ({"seeds": list(range(100))}, 4),
    ],
    ids=["epochs", "data_shape", "seed_count"],
)
def test_what_the_program_is_traced_from_is_in_its_key(tmp_path, change, saved):
    compile_seeds(CONFIG, SMALL, SEEDS, program_cache=tmp_path)
    args = {"config": CONFIG, "data": SMALL, "seeds": SEEDS, **change}
    compile_seeds(args["config"], args["data"], args["seeds"], program_cache=tmp_path)
    assert len(_programs(tmp_path)) == saved


@pytest.mark.parametrize(
    "change",
    [
        {
            "config": TrainConfig("attention", epochs=2, learning_rate=1e-2),
            "data": fibonacci_windows(n_terms=80, window=6, scaling="log"),
        },
        {"data": fibonacci_windows(n_terms=80, window=6, split_seed=3)},
    ],
    ids=["learning_rate_and_scaling", "split"],
)
def test_arguments_of_the_program_are_not_in_its_key(tmp_path, change):
    # Learning rate and windows are traced arguments: one saved program serves them all.
    args = {"config": CONFIG, "data": SMALL, **change}
    direct = compile_seeds(args["config"], args["data"], SEEDS)()
    compile_seeds(CONFIG, SMALL, SEEDS, program_cache=tmp_path)
    cached = compile_seeds(args["config"], args["data"], SEEDS, program_cache=tmp_path)()
    assert len(_programs(tmp_path)) == 2
    chex.assert_trees_all_close(cached, direct, atol=1e-6)


def test_the_seeds_themselves_are_not_in_the_key(tmp_path):
    # The keys are the program's argument: other seeds of the same count reuse it.
    a = compile_seeds(CONFIG, SMALL, [0, 1, 2], program_cache=tmp_path)()
    b = compile_seeds(CONFIG, SMALL, [7, 8, 9], program_cache=tmp_path)()
    assert len(_programs(tmp_path)) == 2
    assert not np.array_equal(a.test_mse, b.test_mse)


def test_a_damaged_program_is_traced_again(tmp_path):
    expected = compile_seeds(CONFIG, SMALL, SEEDS, program_cache=tmp_path)()
    saved = _programs(tmp_path)
    for program in saved:
        program.write_bytes(b"not a program")
    result = compile_seeds(CONFIG, SMALL, SEEDS, program_cache=tmp_path)()
    chex.assert_trees_all_equal(result, expected)
    assert all(program.read_bytes() != b"not a program" for program in saved)


def test_keys_follow_jax_settings():
    parts = {"model": "vanilla"}
    before = program_cache.program_key(parts)
    jax.config.update("jax_default_matmul_precision", "highest")
    try:
        changed = program_cache.program_key(parts)
    finally:
        jax.config.update("jax_default_matmul_precision", None)
    assert changed != before
    assert program_cache.program_key(parts) == before


def test_a_change_in_a_sub_package_changes_the_key(tmp_path, monkeypatch):
    # fibjax.models is a package: its modules are part of the source the key follows.
    import shutil

    copy = tmp_path / "fibjax"
    shutil.copytree(provenance.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(provenance, "PACKAGE_DIR", copy)
    before = program_cache.program_key({"model": "vanilla"})
    module = copy / "models" / "cells.py"
    assert module.exists()
    module.write_text(module.read_text() + "\n# changed\n")
    changed = program_cache.program_key({"model": "vanilla"})
    assert changed != before
    module.rename(copy / "models" / "cells_renamed.py")  # a name is part of the source too
    assert program_cache.program_key({"model": "vanilla"}) not in (before, changed)


def test_array_digest_sees_dtype_shape_and_values():
    a = np.arange(6, dtype=np.float64)
    digests = {
        program_cache.array_digest([a]),
        program_cache.array_digest([a.astype(np.float32)]),
        program_cache.array_digest([a.reshape(2, 3)]),
        program_cache.array_digest([a + 1]),
    }
    assert len(digests) == 4
    assert program_cache.array_digest([a]) == program_cache.array_digest([a.copy()])


def test_a_cache_that_cannot_be_written_is_left_alone(tmp_path):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    result = compile_seeds(CONFIG, SMALL, SEEDS, program_cache=blocked / "programs")()
    chex.assert_shape(result.test_mse, (len(SEEDS),))
    assert blocked.read_text() == "not a folder"


def test_threads_asking_for_one_program_make_it_once():
    memo, made, started = ProgramMemo(maxsize=2), [], threading.Barrier(4)

    def make():
        made.append(1)
        time.sleep(0.05)
        return "program"

    def ask():
        started.wait()
        return memo.get_or_make("a", make)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: ask(), range(4)))
    assert got == ["program"] * 4 and made == [1]
