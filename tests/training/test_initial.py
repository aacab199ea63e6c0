"""Initial weights drawn ahead (CPU): each seed's own, and one program for every window."""

import jax
import numpy as np
import pytest

from fibjax.models import CELLS, POOLINGS, init_params
from fibjax.training import program_cache
from fibjax.training.config import TrainConfig
from fibjax.training.initial import init_window, initials_program, to_window
from fibjax.training.program import split_key

SEEDS = [5, 0, 9]
# Every pooling and every cell, each once.
MODELS = [(model, list(CELLS)[i % len(CELLS)]) for i, model in enumerate(POOLINGS)]


def _mesh():
    return jax.sharding.Mesh(np.array(jax.devices()[:1]), ("seeds",))


def _drawn(config, window, seeds, along=()):
    """The program, and the seeds' weights for ``window`` as the training program gets them
    (drawn, then to_window), after checking the drawn weights' shapes against those declared."""
    padded = len(seeds)
    made = initials_program(config, window, 1, padded, _mesh(), None, along)
    compile_initials, shapes, repeat_to = made
    initials = compile_initials()
    sharding = jax.sharding.NamedSharding(_mesh(), jax.sharding.PartitionSpec("seeds"))
    drawn = initials(jax.device_put(np.asarray(seeds, np.uint32), sharding))
    assert jax.tree.map(lambda s: s.shape, shapes) == jax.tree.map(lambda d: d.shape, drawn)
    assert repeat_to in (None, window)
    return initials, to_window(drawn, config.model, repeat_to)


@pytest.mark.parametrize("model, cell", MODELS)
def test_each_seed_gets_the_weights_its_training_draws(model, cell):
    # The reference: the model's own init, compiled for one seed at a time, under the seed's first
    # key. (Run op by op instead, the notebook attention's normal draw differed in one last bit.)
    config = TrainConfig(model, cell=cell, hidden=3)
    _, drawn = _drawn(config, 7, SEEDS)
    alone = jax.jit(lambda key: init_params(model, key, hidden=3, window=7, cell=cell))
    for i, seed in enumerate(SEEDS):
        want = alone(split_key(jax.random.key(seed))[0])
        got = jax.tree.map(lambda leaf, i=i: np.asarray(leaf[i]), drawn)
        jax.tree.map(np.testing.assert_array_equal, got, jax.tree.map(np.asarray, want))


@pytest.mark.parametrize("model", list(POOLINGS))
def test_one_program_serves_every_window_unless_the_weights_depend_on_it(model):
    config = TrainConfig(model, hidden=3)
    program_cache.INITIALS.clear()
    first = _drawn(config, 6, SEEDS)[0]
    second = _drawn(config, 11, SEEDS)[0]
    # Only a pooling with per-step weights that are not repeated rows needs one a window.
    bound = POOLINGS[model].window_bound and not POOLINGS[model].module.STEP_ROWS
    assert (first.compiled is second.compiled) != bound
    assert len(program_cache.INITIALS) == (2 if bound else 1)
    assert init_window(config, 11) == (11 if bound else 1)


def test_a_studys_models_share_one_program_and_each_gets_its_own_weights():
    # Every registered pooling drawn together (one cell, as a study's models): one compiled
    # program, and each model's weights the same bits as its program alone draws, at a window
    # where the notebook attention's rows are repeated.
    models = list(POOLINGS)
    program_cache.INITIALS.clear()
    together = {m: _drawn(TrainConfig(m, hidden=3), 7, SEEDS, along=models) for m in models}
    assert len({id(initials.compiled) for initials, _ in together.values()}) == 1
    assert len(program_cache.INITIALS) == 1
    for model, (_, drawn) in together.items():
        _, alone = _drawn(TrainConfig(model, hidden=3), 7, SEEDS)
        jax.tree.map(np.testing.assert_array_equal, drawn, alone)
