"""Weights to and from the list that a Keras model's ``get_weights()`` gives, without TensorFlow.

Keras order:
  vanilla: SimpleRNN kernel ``[1, h]``, recurrent kernel ``[h, h]``, bias ``[h]``, Dense kernel
  ``[h, 1]``, Dense bias ``[1]``;
  attention: the same SimpleRNN weights, attention W ``[h, 1]``, attention b ``[time, 1]``, then
  the Dense kernel and bias.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Paths into the fibjax parameter tree, in Keras's order.
_RNN = (("rnn", "cell", "kernel"), ("rnn", "cell", "recurrent_kernel"), ("rnn", "cell", "bias"))
_HEAD = (("head", "dense", "kernel"), ("head", "dense", "bias"))
_POOL = (("pooling", "kernel"), ("pooling", "bias"))
KERAS_ORDER = {"vanilla": _RNN + _HEAD, "attention": _RNN + _POOL + _HEAD}


def _order(model: str) -> tuple[tuple[str, ...], ...]:
    if model not in KERAS_ORDER:
        raise ValueError(f"model={model!r} is unknown; choose one of {tuple(KERAS_ORDER)}")
    return KERAS_ORDER[model]


def from_keras_weights(model: str, weights: Sequence[np.ndarray]) -> dict[str, Any]:
    """fibjax parameters from a Keras model's ``get_weights()`` list.

    Args:
      model: ``"vanilla"`` or ``"attention"``.
      weights: the arrays in Keras's order (see the module docstring).

    Returns:
      A parameter tree of ``float32`` NumPy arrays for :func:`fibjax.models.predict` or
      :func:`fibjax.train.fit`.

    Raises:
      ValueError: the list has the wrong length or an array the wrong rank.

    >>> w = [np.ones((1, 2)), np.eye(2), np.zeros(2), np.ones((2, 1)), np.zeros(1)]
    >>> params = from_keras_weights("vanilla", w)
    >>> params["head"]["dense"]["kernel"].shape
    (2, 1)
    """
    order = _order(model)
    if len(weights) != len(order):
        raise ValueError(
            f"a Keras {model} model has {len(order)} weight arrays, got {len(weights)}"
        )
    params: dict[str, Any] = {}
    for path, array in zip(order, weights, strict=True):
        array = np.asarray(array, dtype=np.float32)
        expected_rank = 1 if path[-1] == "bias" and path[0] != "pooling" else 2
        if array.ndim != expected_rank:
            raise ValueError(
                f"{'/'.join(path)} must have rank {expected_rank}, got shape {array.shape}"
            )
        node = params
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = array
    return params


def to_keras_weights(model: str, params: Any) -> list[np.ndarray]:
    """The ``get_weights()`` list of a Keras model from fibjax parameters (``float32`` arrays).

    ``keras_model.set_weights(to_keras_weights(name, params))`` loads them into the notebook's
    model.

    >>> w = [np.ones((1, 2)), np.eye(2), np.zeros(2), np.ones((2, 1)), np.zeros(1)]
    >>> [a.shape for a in to_keras_weights("vanilla", from_keras_weights("vanilla", w))]
    [(1, 2), (2, 2), (2,), (2, 1), (1,)]
    """
    weights = []
    for path in _order(model):
        node = params
        for key in path:
            node = node[key]
        weights.append(np.asarray(node, dtype=np.float32))
    return weights
