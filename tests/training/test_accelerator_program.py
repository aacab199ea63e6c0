"""The accelerators' training program against the CPU's: every part, and the first steps.

Claims, by backend:
- on the CPU, the accelerator program's form of every cell × pooling (forced) gives the CPU
  form's losses and gradients to float32 rounding, and has no loop inside a training step;
- on any backend (the CPU, and the accelerator when there is one, else its program forced on
  the CPU), the first ten batch-1 steps from Keras's weights agree with a float64 NumPy reference
  to 1e-6, and ``fit_seeds`` equals ``fit`` per seed.
Whole trainings: tests/training/test_accelerator_runs.py; the choice of program:
tests/training/test_layout.py.
"""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fibjax.data import fibonacci_windows
from fibjax.models import CELLS, POOLINGS, make_model
from fibjax.models.keras_compat import from_keras_weights
from fibjax.training.config import TrainConfig
from fibjax.training.layout import (
    ACCELERATOR_LAYOUT,
    CPU_LAYOUT,
)
from fibjax.training.program import fit
from fibjax.training.seeds import fit_seeds

from conftest import discover_keras_vectors
from helpers import central_differences, forward, normal

SMALL = fibonacci_windows(n_terms=80, window=6)
PARTS = [(cell, pooling) for cell in CELLS for pooling in POOLINGS]
NOTEBOOK = ("vanilla", "attention")
SEEDS = range(32)  # the seeds whose gradients are compared under vmap


def _seed_gradients(layout, cell, pooling, x, y):
    """Losses and gradients of 32 seeds' models under ``vmap``, in ``layout``'s form."""
    model = make_model(
        pooling,
        2,
        cell=cell,
        unroll=layout.time_unroll(TrainConfig(pooling, cell=cell)),
        seeds_last_form=layout.seeds_last,
    )
    # Each seed's weights drawn by NumPy in the model's shapes: nothing to compile for them.
    shapes = jax.eval_shape(model.init, jax.random.key(0), x[:1])["params"]
    leaves, tree = jax.tree.flatten(shapes)
    params = jax.tree.unflatten(
        tree, [0.5 * normal(i, (len(SEEDS), *leaf.shape)) for i, leaf in enumerate(leaves)]
    )

    def loss(p):
        return jnp.mean(jnp.square(model.apply({"params": p}, x) - y))

    program = jax.jit(jax.vmap(jax.value_and_grad(loss)))
    return program, params


@pytest.mark.parametrize("cell, pooling", PARTS)
def test_every_part_in_the_accelerator_form_gives_the_cpu_forms_gradients(cell, pooling):
    # Forced on the CPU: same losses and gradients to float32 rounding, for every registered
    # cell and pooling, with vmap over seeds (where the CPU form runs seed-last).
    x = jnp.asarray(SMALL.train_x[:3], jnp.float32)
    y = jnp.asarray(SMALL.train_y[:3], jnp.float32)
    results = {}
    for layout in (CPU_LAYOUT, ACCELERATOR_LAYOUT):
        program, params = _seed_gradients(layout, cell, pooling, x, y)
        results[layout.name] = program(params)
    chex.assert_tree_all_finite(results["accelerator"])
    chex.assert_trees_all_close(results["accelerator"], results["cpu"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cell, pooling", PARTS)
def test_the_accelerator_form_has_no_loop_inside_a_step(cell, pooling):
    # Every time step written out: on a GPU each loop iteration costs kernel launches.
    x = jnp.zeros((1, 6, 1), jnp.float32)
    counts = {}
    for layout in (CPU_LAYOUT, ACCELERATOR_LAYOUT):
        program, params = _seed_gradients(layout, cell, pooling, x, jnp.zeros(1))
        counts[layout.name] = program.lower(params).as_text().count("stablehlo.while")
    assert counts == {"cpu": 2, "accelerator": 0}


def test_fit_seeds_equals_fit_per_seed(accelerator_target):
    # A seed among others gets what it gets alone, to float32 rounding (the CPU's program:
    # tests/training/test_seeds.py).
    target = accelerator_target
    config = TrainConfig("attention", epochs=1)
    seeds = [7, 1, 4]
    many = fit_seeds(config, SMALL, seeds, devices=target.devices, layout=target.layout)
    with jax.default_device(target.devices[0]):
        for i, seed in enumerate(seeds):
            alone = fit(config, SMALL, key=jax.random.key(seed), layout=target.layout)
            one = jax.tree.map(lambda leaf, i=i: leaf[i], many)
            chex.assert_trees_all_close(one, alone, atol=1e-6, rtol=1e-5)


# The first steps of batch-1 training from Keras's starting weights, against a NumPy reference:
# central differences of a float64 forward pass (tests/helpers.py) and Keras's Adam. The steps
# take the windows with the largest targets: most of the notebook's are below float32's smallest
# normal number, where float32 computes zeros and nothing moves.
STEPS = 10


def _numpy_gradients(model, cell, flat, tree, x, y):
    """d(squared error)/d(each leaf) on one window, by central differences in float64."""

    def loss_of(i):
        def loss(value):
            leaves = [value if j == i else q for j, q in enumerate(flat)]
            prediction, _ = forward(model, cell, jax.tree.unflatten(tree, leaves), x)
            return float(np.square(prediction[0] - y[0]))

        return loss

    return [central_differences(loss_of(i), p) for i, p in enumerate(flat)]


def _numpy_steps(model, cell, params, x, y, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
    """``params`` after one Keras Adam step per window of ``x``, in float64."""
    flat, tree = jax.tree.flatten(jax.tree.map(lambda p: np.asarray(p, np.float64), params))
    m = [np.zeros_like(p) for p in flat]
    v = [np.zeros_like(p) for p in flat]
    for t in range(1, len(y) + 1):
        grads = _numpy_gradients(model, cell, flat, tree, x[t - 1 : t], y[t - 1 : t])
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        for i, g in enumerate(grads):
            m[i] = m[i] + (g - m[i]) * (1 - b1)
            v[i] = v[i] + (np.square(g) - v[i]) * (1 - b2)
            flat[i] = flat[i] - m[i] * alpha / (np.sqrt(v[i]) + eps)
    return jax.tree.unflatten(tree, flat)


def _first_steps(vectors, target, notebook_data):
    keras = vectors.load()
    params = from_keras_weights(vectors.model, keras["w0"], cell=vectors.cell)
    largest = np.argsort(notebook_data.train_y)[-STEPS:]
    data = dataclasses.replace(
        notebook_data,
        train_x=notebook_data.train_x[largest],
        train_y=notebook_data.train_y[largest],
    )
    config = TrainConfig(vectors.model, cell=vectors.cell, epochs=1, shuffle=False)
    with jax.default_device(target.devices[0]):
        got = fit(config, data, key=jax.random.key(0), params=params, layout=target.layout)
    x, y = data.train_x.astype(np.float64), data.train_y.astype(np.float64)
    expected = _numpy_steps(vectors.model, vectors.cell, params, x, y)
    return got.params, expected


VECTORS = discover_keras_vectors()
NOTEBOOK_VECTORS = [v for v in VECTORS if v.cell == "simple" and v.model in NOTEBOOK]


# The CPU's program is held to Keras over whole epochs (tests/models/test_keras.py); here the
# first steps of both programs for the notebook's pair, and with the slow runs the accelerator's
# for every other cell and pooling (their written-out time steps take seconds to compile).
@pytest.mark.parametrize("vectors", NOTEBOOK_VECTORS, ids=lambda v: v.id)
def test_first_steps_from_keras_weights(vectors, target, notebook_data):
    got, expected = _first_steps(vectors, target, notebook_data)
    chex.assert_trees_all_close(got, expected, atol=1e-6, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize(
    "vectors", [v for v in VECTORS if v not in NOTEBOOK_VECTORS], ids=lambda v: v.id
)
def test_first_steps_from_keras_weights_every_variant(vectors, accelerator_target, notebook_data):
    got, expected = _first_steps(vectors, accelerator_target, notebook_data)
    chex.assert_trees_all_close(got, expected, atol=1e-6, rtol=0)
