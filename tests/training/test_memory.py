"""The memory check: counted from the traced program, and refusing what cannot fit."""

import jax
import pytest

from fibjax.data import fibonacci_windows
from fibjax.models import POOLINGS
from fibjax.training import layout as layout_lib
from fibjax.training import memory as memory_lib
from fibjax.training import seeds as seeds_lib
from fibjax.training.config import TrainConfig
from fibjax.training.layout import CPU_LAYOUT
from fibjax.training.memory import param_count
from fibjax.training.seeds import compile_seeds

SMALL = fibonacci_windows(n_terms=80, window=6)  # 51 training windows, quick to compile


class _Checked(Exception):
    pass


@pytest.mark.parametrize("model", list(POOLINGS))
def test_compile_seeds_checks_memory_with_the_models_parameter_count(model, monkeypatch):
    config = TrainConfig(model, epochs=1, hidden=3)  # a program no other test compiles
    asked = []

    def check(config, data, n_seeds, devices, *, n_params=None, layout=None):
        asked.append((n_seeds, n_params, layout.name))
        raise _Checked  # before XLA compiles anything

    monkeypatch.setattr(seeds_lib, "check_memory", check)
    with pytest.raises(_Checked):
        compile_seeds(config, SMALL, [0, 1, 2], learning_rates=[1e-3, 1e-2])
    assert asked == [(6, param_count(config, SMALL), "cpu")]


def test_compile_seeds_refuses_what_memory_cannot_hold(monkeypatch):
    monkeypatch.setattr(memory_lib, "memory_available", lambda device: 1024)
    with pytest.raises(ValueError, match="GiB, more than"):
        compile_seeds(TrainConfig("vanilla", epochs=1, hidden=3), SMALL, [0, 1])


def test_the_orders_drawn_ahead_are_counted(monkeypatch):
    # Room for everything but the orders the CPU draws ahead: refused.
    config, seeds = TrainConfig("vanilla", epochs=1000, hidden=3), list(range(64))
    need = memory_lib.memory_estimate(config, SMALL, 64, 64, n_params=param_count(config, SMALL))
    orders = 64 * 1000 * SMALL.train_x.shape[0] * 2
    assert layout_lib.orders_ahead_bytes(config, SMALL.train_x.shape[0], 64, CPU_LAYOUT) == orders
    monkeypatch.setattr(memory_lib, "memory_available", lambda device: need + orders // 2)
    with pytest.raises(ValueError, match="GiB, more than"):
        memory_lib.check_memory(config, SMALL, len(seeds), [jax.devices()[0]], layout=CPU_LAYOUT)
    monkeypatch.setattr(memory_lib, "memory_available", lambda device: need + orders)
    memory_lib.check_memory(config, SMALL, len(seeds), [jax.devices()[0]], layout=CPU_LAYOUT)
