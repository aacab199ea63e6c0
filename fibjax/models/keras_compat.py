"""Weights to and from the list that a Keras model's ``get_weights()`` gives, without TensorFlow.

Keras order: the recurrent layer's kernel ``[1, kH]``, recurrent kernel ``[H, kH]`` and bias
(``[H]`` SimpleRNN, ``[2, 3H]`` GRU, ``[4H]`` LSTM); then the pooling's weights in the order its
module lists (``KERAS_WEIGHTS``; the notebook's attention: ``W [H, 1]``, ``b [time, 1]``); then the
Dense kernel ``[H, 1]`` and bias ``[1]``. The order is read from the registry of parts
(:mod:`fibjax.models.registry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fibjax.models import cell_entry, make_model, pooling_entry

_HEAD = (("head", "dense", "kernel"), ("head", "dense", "bias"))


def keras_order(model: str, cell: str = "simple") -> tuple[tuple[str, ...], ...]:
    """Paths into the fibjax parameter tree, in Keras's ``get_weights()`` order.

    >>> keras_order("dot", "gru")[3:5]
    (('pooling', 'key_kernel'), ('pooling', 'query'))
    """
    rnn = tuple(("rnn", "cell", name) for name in cell_entry(cell).keras_weights)
    pooling = tuple(("pooling", name) for name in pooling_entry(model).keras_weights)
    return rnn + pooling + _HEAD


def _ranks(model: str, cell: str) -> dict[tuple[str, ...], int]:
    """Each parameter's rank, from the module's own initialisation (ranks do not depend on the
    hidden size or the window length)."""
    x = jax.ShapeDtypeStruct((1, 3, 1), jnp.float32)
    shapes = jax.eval_shape(make_model(model, 2, cell=cell).init, jax.random.key(0), x)["params"]
    ranks = {}
    for path in keras_order(model, cell):
        node = shapes
        for key in path:
            node = node[key]
        ranks[path] = len(node.shape)
    return ranks


def from_keras_weights(
    model: str, weights: Sequence[np.ndarray], *, cell: str = "simple"
) -> dict[str, Any]:
    """fibjax parameters from a Keras model's ``get_weights()`` list.

    Args:
      model: a pooling name from :data:`fibjax.models.POOLINGS`.
      weights: the arrays in Keras's order (see the module docstring).
      cell: a cell name from :data:`fibjax.models.CELLS`.

    Returns:
      A parameter tree of ``float32`` NumPy arrays for :func:`fibjax.models.predict` or
      :func:`fibjax.training.program.fit`.

    Raises:
      ValueError: the list has the wrong length or an array the wrong rank.

    >>> w = [np.ones((1, 2)), np.eye(2), np.zeros(2), np.ones((2, 1)), np.zeros(1)]
    >>> params = from_keras_weights("vanilla", w)
    >>> params["head"]["dense"]["kernel"].shape
    (2, 1)
    """
    order = keras_order(model, cell)
    if len(weights) != len(order):
        raise ValueError(
            f"a Keras {model} model with cell={cell!r} has {len(order)} weight arrays,"
            f" got {len(weights)}"
        )
    ranks = _ranks(model, cell)
    params: dict[str, Any] = {}
    for path, array in zip(order, weights, strict=True):
        array = np.asarray(array, dtype=np.float32)
        if array.ndim != ranks[path]:
            raise ValueError(
                f"{'/'.join(path)} must have rank {ranks[path]}, got shape {array.shape}"
            )
        node = params
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = array
    return params


def to_keras_weights(model: str, params: Any, *, cell: str = "simple") -> list[np.ndarray]:
    """The ``get_weights()`` list of a Keras model from fibjax parameters (``float32`` arrays).

    ``keras_model.set_weights(to_keras_weights(name, params, cell=cell))`` loads them into the
    Keras model of the same layers.

    >>> w = [np.ones((1, 2)), np.eye(2), np.zeros(2), np.ones((2, 1)), np.zeros(1)]
    >>> [a.shape for a in to_keras_weights("vanilla", from_keras_weights("vanilla", w))]
    [(1, 2), (2, 2), (2,), (2, 1), (1,)]
    """
    weights = []
    for path in keras_order(model, cell):
        node = params
        for key in path:
            node = node[key]
        weights.append(np.asarray(node, dtype=np.float32))
    return weights
