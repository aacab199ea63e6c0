"""Many seeds in one call: equal to one seed at a time, and to itself when sharded."""

import dataclasses
import math
import os
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fibjax.data import fibonacci_windows
from fibjax.models import CELLS, POOLINGS, init_params
from fibjax.training import layout as layout_lib
from fibjax.training import program_cache
from fibjax.training import seeds as seeds_lib
from fibjax.training.config import TrainConfig
from fibjax.training.program import fit, make_train
from fibjax.training.runtime import xla_flags
from fibjax.training.seeds import compile_seeds, fit_seeds

SMALL = fibonacci_windows(n_terms=80, window=6)
SEEDS = [3, 0, 11, 5, 2]


@pytest.fixture(scope="module", params=["vanilla", "attention"])
def batched(request):
    config = TrainConfig(request.param, epochs=2)
    return config, fit_seeds(config, SMALL, SEEDS, devices=jax.devices()[:1])


def test_shapes_have_a_leading_seed_axis(batched):
    config, result = batched
    n = len(SEEDS)
    chex.assert_shape(result.epoch_losses, (n, config.epochs))
    chex.assert_shape([result.train_mse, result.test_mse, result.diverged_epoch], (n,))
    chex.assert_tree_shape_prefix(result.params, (n,))
    chex.assert_tree_all_finite(result.params)
    assert result.step_losses is None


def test_each_seed_equals_fit_alone(batched):
    config, result = batched
    for i, seed in enumerate(SEEDS):
        alone = fit(config, SMALL, key=jax.random.key(seed))
        one = jax.tree.map(lambda leaf, i=i: leaf[i], result)
        chex.assert_trees_all_close(one, alone, atol=1e-6, rtol=0)


# The written-out recurrences run seed-last under vmap (fibjax.models.recurrence): a seed among
# others gets the bits it gets alone, from the first step to the evaluation (CPU). vmap's own form
# (the LSTM's) differs from a seed alone in the last bits.
@pytest.mark.parametrize("cell", [c for c, entry in CELLS.items() if entry.layer.SEEDS_LAST_UNITS])
def test_each_seed_of_a_seed_last_cell_gets_its_bits_alone(cell):
    config = TrainConfig("vanilla", cell=cell, epochs=2)
    result = fit_seeds(config, SMALL, SEEDS[:3], devices=jax.devices()[:1])
    alone = jax.jit(make_train(config, SMALL))
    for i, seed in enumerate(SEEDS[:3]):
        one = jax.tree.map(lambda leaf, i=i: leaf[i], result)
        chex.assert_trees_all_equal(one, alone(jax.random.key(seed)))


def test_distinct_seeds_start_apart(batched):
    config, _ = batched
    kernels = fit_seeds(TrainConfig(config.model, epochs=1, learning_rate=1e-12), SMALL, SEEDS)
    rnn = np.asarray(kernels.params["rnn"]["cell"]["kernel"])
    assert len({row.tobytes() for row in rnn}) == len(SEEDS)


def test_same_seeds_same_results(batched):
    config, result = batched
    again = fit_seeds(config, SMALL, SEEDS, devices=jax.devices()[:1])
    chex.assert_trees_all_equal(result, again)


def test_models_see_the_same_order_under_a_seed():
    # With a zeroed output layer both models predict tanh(0) = 0, so each step's loss is the
    # squared target of the window it saw: equal step losses mean the same order of windows.
    losses = {}
    for name in ("vanilla", "attention"):
        params = init_params(name, jax.random.key(9), window=6)
        params["head"] = jax.tree.map(jnp.zeros_like, params["head"])
        config = TrainConfig(name, epochs=2, record_step_losses=True, learning_rate=1e-30)
        result = fit(config, SMALL, key=jax.random.key(4), params=params)
        losses[name] = np.asarray(result.step_losses)
    np.testing.assert_array_equal(losses["vanilla"], losses["attention"])
    squared = np.square(SMALL.train_y.astype(np.float32))
    np.testing.assert_allclose(np.sort(losses["vanilla"][0]), np.sort(squared), rtol=1e-6)
    assert not np.array_equal(losses["vanilla"][0], squared)  # shuffled, not the data order
    assert not np.array_equal(losses["vanilla"][0], losses["vanilla"][1])  # fresh each epoch


def test_padding_when_seeds_do_not_divide_devices():
    run = compile_seeds(TrainConfig("vanilla", epochs=1), SMALL, [1, 2, 3])
    assert run().test_mse.shape == (3,)


RATES = (1e-3, 3e-2)


@pytest.fixture(scope="module")
def over_rates():
    config = TrainConfig("attention", epochs=2)
    run = compile_seeds(config, SMALL, SEEDS[:3], learning_rates=RATES, chunk=2)
    return config, run


def test_learning_rates_are_an_axis_of_one_call(over_rates):
    config, run = over_rates
    result = run()
    chex.assert_shape(result.test_mse, (len(RATES), 3))
    chex.assert_tree_shape_prefix(result.params, (len(RATES), 3))
    for r, rate in enumerate(RATES):
        alone = fit_seeds(dataclasses.replace(config, learning_rate=rate), SMALL, SEEDS[:3])
        # Bit for bit: a sweep's grid point equals the comparison run alone.
        chex.assert_trees_all_equal(jax.tree.map(lambda leaf, r=r: leaf[r], result), alone)


def test_one_program_trains_other_data_of_the_same_shapes(over_rates):
    config, run = over_rates
    other = fibonacci_windows(n_terms=80, window=6, scaling="log", split_seed=5)
    result = run(other)
    alone = fit_seeds(dataclasses.replace(config, learning_rate=RATES[1]), other, SEEDS[:3])
    chex.assert_trees_all_equal(jax.tree.map(lambda leaf: leaf[1], result), alone)
    with pytest.raises(ValueError, match="differ in shape"):
        run(fibonacci_windows(n_terms=81, window=6))


@pytest.mark.parametrize("rates, message", [((), "empty"), ((1e-3, -1.0), "positive")])
def test_bad_learning_rates(rates, message):
    with pytest.raises(ValueError, match=message):
        compile_seeds(TrainConfig("vanilla", epochs=1), SMALL, [0], learning_rates=rates)


SHARDED = textwrap.dedent(
    """
    import jax, numpy as np
    from fibjax.data import fibonacci_windows
    from fibjax.models import POOLINGS
    from fibjax.training.config import TrainConfig
    from fibjax.training.seeds import fit_seeds
    assert jax.device_count() == 4, jax.devices()
    for model in POOLINGS:
        config = TrainConfig(model, epochs=2, learning_rate={rate})
        r = fit_seeds(config, fibonacci_windows(80, 6), {seeds})
        np.savez(f"{out}/{{model}}.npz", test=r.test_mse, losses=r.epoch_losses,
                 kernel=r.params["rnn"]["cell"]["kernel"])
    """
)
# A large step, so that a difference in the last bits of one update shows in the results (an
# attention model's gradient once depended on how many seeds a device trained at once).
SHARDED_RATE = 3e-2


@pytest.fixture(scope="module")
def sharded_over_four(tmp_path_factory):
    """Every model's results for SEEDS, trained in a subprocess over 4 CPU devices."""
    out = tmp_path_factory.mktemp("sharded")
    env = dict(
        os.environ,
        XLA_FLAGS=xla_flags("--xla_force_host_platform_device_count=4"),
        JAX_PLATFORMS="cpu",
    )
    code = SHARDED.format(seeds=SEEDS, out=out, rate=SHARDED_RATE)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("model", list(POOLINGS))
def test_sharded_over_four_cpu_devices_equals_one_device(model, sharded_over_four):
    sharded = np.load(sharded_over_four / f"{model}.npz")
    config = TrainConfig(model, epochs=2, learning_rate=SHARDED_RATE)
    single = fit_seeds(config, SMALL, SEEDS, devices=jax.devices()[:1])
    # Bit for bit: a seed's result does not depend on how the seeds were spread.
    np.testing.assert_array_equal(sharded["test"], single.test_mse)
    np.testing.assert_array_equal(sharded["losses"], single.epoch_losses)
    np.testing.assert_array_equal(sharded["kernel"], single.params["rnn"]["cell"]["kernel"])


WIDE = textwrap.dedent(
    """
    import jax, numpy as np
    from fibjax.data import fibonacci_windows
    from fibjax.training.config import TrainConfig
    from fibjax.training.seeds import fit_seeds
    assert jax.device_count() == 2, jax.devices()
    config = TrainConfig("vanilla", hidden=16, epochs=1)
    r = fit_seeds(config, fibonacci_windows(40, 4), list(range(128)))
    assert np.all(np.isfinite(r.test_mse))
    """
)


@pytest.mark.slow
def test_wide_models_on_two_cpu_devices_do_not_hang():
    # The orthogonal initialiser's QR, batched over 64 seeds per device, used to wait forever
    # for CPU threads held by the other device.
    env = dict(
        os.environ,
        XLA_FLAGS=xla_flags("--xla_force_host_platform_device_count=2"),
        JAX_PLATFORMS="cpu",
    )
    subprocess.run([sys.executable, "-c", WIDE], check=True, env=env, timeout=120)


def test_a_seeds_result_does_not_depend_on_its_chunk():
    # 70 seeds on one device: padded to one chunk of 80, or chunks of 48 and 32; and the same
    # seeds among 100 (one chunk of 112). Seeds past the last full vector of a chunk whose width
    # is not a multiple of 8 had differed in their last bits (fibjax.training.layout.SEED_ALIGN).
    config = TrainConfig("attention", epochs=2)
    one_device = jax.devices()[:1]
    whole = compile_seeds(config, SMALL, range(70), devices=one_device)()
    chunks = compile_seeds(config, SMALL, range(70), devices=one_device, chunk=40)()
    more = compile_seeds(config, SMALL, range(100), devices=one_device)()
    chex.assert_trees_all_equal(whole, chunks)
    chex.assert_trees_all_equal(whole, jax.tree.map(lambda leaf: leaf[:70], more))


# ----------------------------------------------------------------- orders drawn ahead (CPU)


def _reference_order(key, n):
    """The documented shuffle in NumPy: each index packed under jax.random's bits, sorted,
    in as many rounds as make ties negligible (fibjax.training.program.shuffled_order)."""
    index_bits = max(1, (n - 1).bit_length())
    rounds = max(1, math.ceil(3 * math.log(n) / ((32 - index_bits) * math.log(2))))
    low, index, order = (1 << index_bits) - 1, np.arange(n, dtype=np.uint32), np.arange(n)
    for round_key in jax.random.split(key, rounds):
        noise = np.asarray(jax.random.bits(round_key, (n,), jnp.uint32)) & ~np.uint32(low)
        order = order[np.sort(noise | index) & low]
    return order


@pytest.mark.parametrize("epochs", [2, 4])  # 64 rows sorted by jax.lax.sort, 128 by the network
def test_orders_drawn_ahead_follow_the_shuffle(epochs):
    # On a CPU the orders are drawn before training, by a program of their own; each is the
    # shuffle under the seed's order key for the epoch, computed here in NumPy.
    config = TrainConfig("vanilla", epochs=epochs)
    run = compile_seeds(config, SMALL, SEEDS, devices=jax.devices()[:1])
    assert run.orders is not None
    orders = np.asarray(run.orders(run.seeds))
    n = SMALL.train_x.shape[0]
    chex.assert_shape(orders, (32, epochs, n))  # padded to the smallest chunk
    for i, seed in enumerate(SEEDS):
        order_key = jax.random.split(jax.random.key(seed))[1]
        for epoch in range(epochs):
            expected = _reference_order(jax.random.fold_in(order_key, epoch), n)
            np.testing.assert_array_equal(orders[i, epoch], expected)


def test_models_read_the_orders_drawn_once():
    program_cache.ORDERS.clear()
    runs = [
        compile_seeds(TrainConfig(model, epochs=2), SMALL, SEEDS, devices=jax.devices()[:1])
        for model in ("vanilla", "attention")
    ]
    first, second = (run.orders(run.seeds) for run in runs)
    assert first is second and len(program_cache.ORDERS) == 1
    other = compile_seeds(TrainConfig("vanilla", epochs=2), SMALL, SEEDS[:4])
    assert other.orders(other.seeds) is not first


def test_orders_too_large_to_hold_are_drawn_in_the_epoch_loop(batched, monkeypatch):
    # Past ORDERS_AHEAD_BYTES the program draws each epoch's order itself: the same orders, so
    # the same bits (CPU).
    config, ahead = batched
    monkeypatch.setattr(layout_lib, "ORDERS_AHEAD_BYTES", 0)
    run = compile_seeds(config, SMALL, SEEDS, devices=jax.devices()[:1])
    assert run.orders is None
    chex.assert_trees_all_equal(run(), ahead)


def test_orders_of_more_windows_than_uint16_counts_train_the_same(batched, monkeypatch):
    # Past 2**16 training windows the orders are int32; forced here on small data.
    config, ahead = batched
    monkeypatch.setattr(seeds_lib, "order_dtype", lambda n_train: np.dtype(np.int32))
    run = compile_seeds(config, SMALL, SEEDS, devices=jax.devices()[:1])
    assert run.orders(run.seeds).dtype == np.int32
    chex.assert_trees_all_equal(run(), ahead)


def test_each_program_beside_the_training_starts_once(monkeypatch):
    """The orders' and the initial weights' programs start once the training program is lowered,
    once each, whether ``make`` ran or the training program came from the memo."""
    started = []
    real_orders, real_initials = seeds_lib._compile_orders, seeds_lib.initials_program

    def orders(*args, **kwargs):
        started.append("orders")
        return real_orders(*args, **kwargs)

    def initials(*args, **kwargs):
        make, *rest = real_initials(*args, **kwargs)

        def start():
            started.append("initials")
            return make()

        return (start, *rest)

    monkeypatch.setattr(seeds_lib, "_compile_orders", orders)
    monkeypatch.setattr(seeds_lib, "initials_program", initials)
    config = TrainConfig("vanilla", epochs=1)
    for _ in range(2):  # compiled, then found in the memo
        run = compile_seeds(config, SMALL, SEEDS, devices=jax.devices()[:1])
        assert run.orders is not None and run.initials is not None
        assert sorted(started) == ["initials", "orders"]
        started.clear()
