"""Training one seed: determinism, tracing, batching, divergence, shuffle and compile options."""

import logging
import os
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from fibjax.data import fibonacci_windows
from fibjax.models import CELLS, POOLINGS, init_params, make_model
from fibjax.training import program as program_lib
from fibjax.training.config import FitResult, TrainConfig, seed_keys
from fibjax.training.program import fit, make_train, shuffled_order
from fibjax.training.runtime import SMALL_LOOP_OPTION
from fibjax.training.seeds import compile_seeds, fit_seeds

SMALL = fibonacci_windows(n_terms=80, window=6)  # 51 training windows, quick to compile


@pytest.mark.parametrize("name", ["vanilla", "attention"])
def test_result_shapes(name):
    assert SMALL.train_x.shape[0] == 51
    config = TrainConfig(name, epochs=3, record_step_losses=True, batch_size=5)
    result = fit(config, SMALL, key=jax.random.key(0))
    chex.assert_shape(result.epoch_losses, (3,))
    chex.assert_shape([result.train_mse, result.test_mse, result.diverged_epoch], ())
    # 51 windows in batches of 5: ten full batches and a last one of 1, as Keras does.
    chex.assert_shape(result.step_losses, (3, 11))
    chex.assert_tree_all_finite((result.params, result.epoch_losses, result.test_mse))
    chex.assert_trees_all_equal_shapes(
        result.params, init_params(name, jax.random.key(0), window=6)
    )
    assert int(result.diverged_epoch) == 0


@pytest.mark.parametrize("cell", [c for c in CELLS if c != "simple"])
def test_every_cell_trains(cell):
    config = TrainConfig("additive", cell=cell, epochs=1, batch_size=5)
    result = fit(config, SMALL, key=jax.random.key(0))
    chex.assert_tree_all_finite((result.params, result.epoch_losses, result.test_mse))
    chex.assert_trees_all_equal_shapes(
        result.params, init_params("additive", jax.random.key(0), window=6, cell=cell)
    )


def test_epoch_loss_is_batch_weighted_mean_of_step_losses():
    config = TrainConfig("vanilla", epochs=2, batch_size=5, record_step_losses=True)
    result = fit(config, SMALL, key=jax.random.key(1))
    sizes = np.array([5] * 10 + [1])
    expected = (np.asarray(result.step_losses) * sizes).sum(axis=1) / 51
    np.testing.assert_allclose(np.asarray(result.epoch_losses), expected, rtol=1e-6)


def test_step_losses_are_off_by_default():
    result = fit(TrainConfig("vanilla", epochs=1), SMALL, key=jax.random.key(0))
    assert result.step_losses is None


def test_same_key_gives_identical_results():
    config = TrainConfig("attention", epochs=2)
    first = fit(config, SMALL, key=jax.random.key(7))
    second = fit(config, SMALL, key=jax.random.key(7))
    chex.assert_trees_all_equal(first, second)
    other = fit(config, SMALL, key=jax.random.key(8))
    assert not np.array_equal(np.asarray(first.epoch_losses), np.asarray(other.epoch_losses))


def test_training_is_traced_once():
    train = make_train(TrainConfig("vanilla", epochs=1), SMALL)
    jitted = jax.jit(chex.assert_max_traces(train, n=1))
    for seed in range(3):
        jax.block_until_ready(jitted(jax.random.key(seed)))


def test_training_reduces_the_loss():
    config = TrainConfig("vanilla", epochs=20, learning_rate=1e-2)
    result = fit(
        config, fibonacci_windows(n_terms=80, window=6, scaling="log"), key=jax.random.key(0)
    )
    losses = np.asarray(result.epoch_losses)
    assert losses[-1] < 0.5 * losses[0]


def test_unshuffled_order_is_the_data_order():
    # With shuffle off the key only initialises: the same params give the same run for any key.
    config = TrainConfig("vanilla", epochs=1, shuffle=False)
    params = init_params("vanilla", jax.random.key(0), window=6)
    a = fit(config, SMALL, key=jax.random.key(1), params=params)
    b = fit(config, SMALL, key=jax.random.key(2), params=params)
    chex.assert_trees_all_equal(a, b)


def test_divergence_is_flagged():
    # Adam moves each weight by about the learning rate per step: at 1e38 some seeds push a
    # weight past float32's largest value within an epoch, others saturate tanh and stop.
    config = TrainConfig("vanilla", epochs=3, learning_rate=1e38)
    diverged = fit(config, SMALL, key=jax.random.key(1))
    assert int(diverged.diverged_epoch) == 1
    leaves = jax.tree_util.tree_leaves(diverged.params)
    assert not all(np.all(np.isfinite(leaf)) for leaf in leaves)
    stable = fit(config, SMALL, key=jax.random.key(0))
    assert int(stable.diverged_epoch) == 0
    chex.assert_tree_all_finite(stable.params)


def test_fit_result_is_a_pytree():
    result = fit(TrainConfig("vanilla", epochs=1), SMALL, key=jax.random.key(0))
    doubled = jax.tree.map(lambda leaf: leaf * 2, result)
    assert isinstance(doubled, FitResult)
    np.testing.assert_allclose(doubled.test_mse, 2 * result.test_mse)
    assert jnp.issubdtype(result.diverged_epoch.dtype, jnp.integer)


@pytest.mark.parametrize("n", [1, 2, 7, 826, 1024, 1025, 5000])
def test_shuffled_order_is_a_permutation(n):
    order = shuffled_order(jax.random.key(n), n)
    chex.assert_shape(order, (n,))
    assert order.dtype == jnp.int32
    np.testing.assert_array_equal(np.sort(np.asarray(order)), np.arange(n))


def test_shuffled_order_is_uniform():
    # Over 4,000 keys every element lands in every position about equally often, and every
    # ordered pair of elements is equally likely either way (chi-square tests, scipy).
    n, draws = 8, 4000
    keys = jax.random.split(jax.random.key(0), draws)
    orders = np.asarray(jax.vmap(lambda k: shuffled_order(k, n))(keys))
    counts = np.stack([np.bincount(orders[:, pos], minlength=n) for pos in range(n)])
    assert stats.chisquare(counts.ravel()).pvalue > 1e-3
    first_before_last = np.sum(np.argmax(orders == 0, axis=1) < np.argmax(orders == n - 1, axis=1))
    assert stats.binomtest(int(first_before_last), draws).pvalue > 1e-3
    assert len({tuple(o) for o in orders}) > 0.9 * draws  # 8! = 40,320 orders, few repeats


def test_shuffled_order_rejects_bad_lengths():
    with pytest.raises(ValueError, match="must be from 1"):
        shuffled_order(jax.random.key(0), 0)


def test_an_xla_without_the_cpu_options_still_compiles(monkeypatch, caplog):
    # An older JAX does not know every option (the one that turns YNNPACK fusions off); fibjax
    # then leaves out what XLA does not know and keeps the rest, instead of failing, and says
    # which it left out in a debug message.
    options = {"xla_fibjax_no_such_option": 1, "xla_cpu_prefer_vector_width": 512}
    monkeypatch.setattr(program_lib, "CPU_COMPILER_OPTIONS", options)
    lowered = jax.jit(lambda x: jnp.sum(x * 2)).lower(jnp.ones(4))
    asked = []

    class Recording:
        def compile(self, compiler_options):
            asked.append(dict(compiler_options))
            return lowered.compile(compiler_options=compiler_options)

    with caplog.at_level(logging.DEBUG, logger=program_lib.__name__):
        compiled = program_lib.compile_program(Recording(), "cpu")
    assert float(compiled(jnp.ones(4))) == 8.0
    assert asked == [options, {"xla_cpu_prefer_vector_width": 512}]
    assert [r.getMessage() for r in caplog.records if r.name == program_lib.__name__] == [
        "XLA has no compile option 'xla_fibjax_no_such_option'; compiling without it"
    ]
    assert len(options) == 2  # the registry itself is left as it was


def test_an_option_error_other_than_an_unknown_name_is_raised(monkeypatch):
    monkeypatch.setattr(program_lib, "CPU_COMPILER_OPTIONS", {"xla_cpu_prefer_vector_width": "x"})
    lowered = jax.jit(lambda x: jnp.sum(x * 2)).lower(jnp.ones(4))
    with pytest.raises(jax.errors.JaxRuntimeError):
        program_lib.compile_program(lowered, "cpu")


def test_cpu_options_do_not_change_results():
    # The options pick how XLA runs reductions and writes its code, not what they compute.
    config = TrainConfig("attention", epochs=2)
    train = jax.jit(make_train(config, SMALL))
    key = jax.random.key(3)
    with_options = program_lib.compile_program(train.lower(key), "cpu")(key)
    plain = train.lower(key).compile()(key)
    chex.assert_trees_all_close(with_options, plain, atol=1e-6)


# Every cell (with the notebook's pooling) and every pooling (with the notebook's cell): its
# seeds' initial weights and a gradient step under vmap, the arithmetic a training program runs.
PARTS = sorted({("simple", pooling) for pooling in POOLINGS} | {(c, "attention") for c in CELLS})


@pytest.mark.parametrize("cell, pooling", PARTS)
def test_xla_fusion_emitters_left_off_keep_the_bits(cell, pooling):
    # fibjax compiles with XLA's older fusion code generator, which compiles faster
    # (benchmarks/NOTES.md). On the CPU both must give the same bits, so that results saved
    # before the option stay the results of the same seeds.
    model = make_model(pooling, 2, cell=cell)
    x, y = (jnp.asarray(a[:1], jnp.float32) for a in (SMALL.train_x, SMALL.train_y))

    def step(key):
        params = model.init(key, x)["params"]
        return jax.value_and_grad(
            lambda p: jnp.mean(jnp.square(model.apply({"params": p}, x) - y))
        )(params)

    keys = seed_keys(range(32))
    lowered = jax.jit(jax.vmap(step)).lower(keys)
    options = dict(program_lib.CPU_COMPILER_OPTIONS, xla_cpu_use_fusion_emitters=True)
    try:
        emitters = lowered.compile(compiler_options=options)(keys)
    except jax.errors.JaxRuntimeError as error:
        if "No such compile option" not in str(error):
            raise
        pytest.skip(f"this XLA has no choice of fusion code generator: {error}")
    chex.assert_trees_all_equal(program_lib.compile_program(lowered, "cpu")(keys), emitters)


def test_training_loops_compile_to_single_kernels():
    # The tests run with fibjax's XLA_FLAGS (conftest): XLA hoists each training loop into one
    # kernel (a call marked xla_cpu_small_call) instead of running its body kernel by kernel.
    run = compile_seeds(TrainConfig("attention", epochs=1), SMALL, [0])
    assert "xla_cpu_small_call" in run.compiled.as_text()


# Trains in a process whose XLA runs every loop kernel by kernel (the limit set to 0 by hand): one
# seed alone, and 16 seeds vmapped on one device (the attention pooling's seed-last code).
LOOP_MODELS = [("attention", "simple"), ("vanilla", "gru")]
KERNEL_BY_KERNEL = textwrap.dedent(
    f"""
    import sys, numpy as np, jax
    from fibjax.data import fibonacci_windows
    from fibjax.training.config import TrainConfig
    from fibjax.training.program import make_train
    from fibjax.training.seeds import fit_seeds
    data = fibonacci_windows(n_terms=80, window=6)
    for model, cell in {LOOP_MODELS!r}:
        config = TrainConfig(model, epochs=2, cell=cell)
        result = jax.jit(make_train(config, data))(jax.random.key(4))
        leaves = jax.tree.leaves((result.params, result.epoch_losses, result.test_mse))
        np.savez(f"{{sys.argv[1]}}/{{model}}-{{cell}}.npz", *leaves)
    config = TrainConfig("attention", epochs=2)
    seeds = fit_seeds(config, data, range(16), devices=jax.devices()[:1])
    np.savez(f"{{sys.argv[1]}}/seeds.npz", *jax.tree.leaves(seeds))
    """
)


@pytest.mark.slow
def test_single_kernel_loops_give_the_same_bits(tmp_path):
    env = {**os.environ, "XLA_FLAGS": f"--xla_backend_extra_options={SMALL_LOOP_OPTION}=0"}
    subprocess.run(
        [sys.executable, "-c", KERNEL_BY_KERNEL, str(tmp_path)], env=env, check=True, timeout=300
    )
    for model, cell in LOOP_MODELS:
        config = TrainConfig(model, epochs=2, cell=cell)
        result = jax.jit(make_train(config, SMALL))(jax.random.key(4))
        leaves = jax.tree.leaves((result.params, result.epoch_losses, result.test_mse))
        saved = np.load(tmp_path / f"{model}-{cell}.npz")
        chex.assert_trees_all_equal(leaves, [saved[f"arr_{i}"] for i in range(len(leaves))])
    config = TrainConfig("attention", epochs=2)
    leaves = jax.tree.leaves(fit_seeds(config, SMALL, range(16), devices=jax.devices()[:1]))
    saved = np.load(tmp_path / "seeds.npz")
    chex.assert_trees_all_equal(leaves, [saved[f"arr_{i}"] for i in range(len(leaves))])
