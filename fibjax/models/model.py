"""A model is a recurrent cell, a pooling and ``Dense(1, tanh)``, each chosen by name.

Every model names its parts alike (``rnn``, ``pooling``, ``head``) and Flax draws each part's
weights from its name, so under one key the models that share a cell start from the same
recurrent and output weights, whatever their pooling.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fibjax.models.initializers import glorot_uniform, zeros
from fibjax.models.registry import cell_entry, pooling_entry


class Head(nn.Module):
    """Keras's ``Dense(1, tanh)``, squeezed to one value per example."""

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        """``<float32>[batch, features]`` → ``<float32>[batch]``."""
        dense = nn.Dense(1, kernel_init=glorot_uniform, bias_init=zeros, name="dense")
        return jnp.tanh(dense(z))[..., 0]


class RecurrentModel(nn.Module):
    """A registered cell over time, a registered pooling, then ``Dense(1, tanh)``.

    Attributes:
      pooling: a name from :data:`fibjax.models.POOLINGS` (``"vanilla"``: the last state).
      cell: a name from :data:`fibjax.models.CELLS`.
      hidden: hidden units of the cell.
      unroll: time steps unrolled per iteration of the recurrent loops (a speed knob;
        ``True``: every step written out, no loop).
      seeds_last_form: under ``vmap`` on a CPU, the written-out passes run with the seed axis
        last (faster there, the same bits); ``False``: ``vmap``'s own form on every platform.

    >>> model = RecurrentModel("additive", cell="gru", hidden=3)
    >>> params = model.init(jax.random.key(0), jnp.zeros((1, 6, 1)))["params"]
    >>> model.apply({"params": params}, jnp.zeros((4, 6, 1))).shape
    (4,)
    """

    pooling: str = "vanilla"
    cell: str = "simple"
    hidden: int = 2
    unroll: int | bool = 1
    seeds_last_form: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """``<float32>[batch, time, 1]`` → ``<float32>[batch]``."""
        pooling = pooling_entry(self.pooling)
        layer = cell_entry(self.cell).layer
        states = layer(
            self.hidden,
            return_sequences=pooling.sequences,
            unroll=self.unroll,
            seeds_last_form=self.seeds_last_form,
            name="rnn",
        )(x)
        pooled = pooling.module(seeds_last_form=self.seeds_last_form, name="pooling")(states)
        return Head(name="head")(pooled)


def make_model(
    name: str,
    hidden: int = 2,
    *,
    cell: str = "simple",
    unroll: int | bool = 1,
    seeds_last_form: bool = True,
) -> nn.Module:
    """The module of a pooling name and a cell name (``unroll`` and ``seeds_last_form`` as in
    :class:`RecurrentModel`).

    >>> make_model("attention", hidden=3)
    RecurrentModel(
        # attributes
        pooling = 'attention'
        cell = 'simple'
        hidden = 3
        unroll = 1
        seeds_last_form = True
    )
    """
    pooling_entry(name)
    cell_entry(cell)
    return RecurrentModel(
        pooling=name, cell=cell, hidden=hidden, unroll=unroll, seeds_last_form=seeds_last_form
    )


def describe_model(model: str, cell: str = "simple", hidden: int = 2) -> str:
    """A model's layers in words, for reports and figures.

    >>> describe_model("additive", "gru", 8)
    'GRU(8) → additive attention → Dense'
    >>> describe_model("vanilla", "simple", 2)
    'SimpleRNN(2) → Dense'
    """
    pooling = pooling_entry(model)
    parts = [f"{cell_entry(cell).label}({hidden})"]
    if pooling.has_attention:
        parts.append(pooling.label)
    return " → ".join([*parts, "Dense"])


def hidden_size(params: Any) -> int:
    """Hidden units of a model's parameters (from the recurrent kernel's shape)."""
    try:
        return int(params["rnn"]["cell"]["recurrent_kernel"].shape[0])
    except (KeyError, TypeError, AttributeError, IndexError):
        raise ValueError(
            "params are not a fibjax model's: rnn/cell/recurrent_kernel is missing"
        ) from None


def count_params(params: Any) -> int:
    """Number of scalar parameters in a parameter tree."""
    return int(sum(leaf.size for leaf in jax.tree_util.tree_leaves(params)))


def init_params(
    name: str, key: jax.Array, *, hidden: int = 2, window: int = 20, cell: str = "simple"
) -> Any:
    """Keras-style initial parameters of a model for windows of ``window`` terms.

    >>> count_params(init_params("vanilla", jax.random.key(0)))
    11
    >>> count_params(init_params("attention", jax.random.key(0)))
    33
    >>> count_params(init_params("dot", jax.random.key(0), cell="lstm"))
    41
    """
    model = make_model(name, hidden, cell=cell)
    return model.init(key, jnp.zeros((1, window, 1), jnp.float32))["params"]


def repeat_steps(params: Any, name: str, window: int, axis: int = 0) -> Any:
    """A model's parameters drawn for a window of one step, as drawn for ``window`` steps.

    Each of the pooling's per-step parameters (its module's ``STEP_ROWS``, one row per time step
    along ``axis``, every row initialised alike) is repeated ``window`` times; the rest is
    returned as it is. For a pooling without such parameters, ``params`` itself.

    Args:
      params: the model's parameters for a window of one step (with a leading seed axis, pass
        ``axis=1``).
      name: the model's pooling, a name from :data:`fibjax.models.POOLINGS`.
      window: the window length to repeat the rows to.
      axis: the time axis of the per-step parameters.

    Returns:
      The parameters for windows of ``window`` terms.

    >>> one = init_params("attention", jax.random.key(0), window=1)
    >>> repeat_steps(one, "attention", 20)["pooling"]["bias"].shape
    (20, 1)
    """
    rows = pooling_entry(name).module.STEP_ROWS
    if not rows:
        return params
    pooling = dict(params["pooling"])
    for row in rows:
        pooling[row] = jnp.repeat(pooling[row], window, axis=axis)
    return {**params, "pooling": pooling}


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {
        "/".join(str(getattr(k, "key", k)) for k in path): tuple(np.shape(leaf))
        for path, leaf in flat
    }


def _checked(name: str, cell: str, params: Any, x: Any) -> tuple[nn.Module, jax.Array]:
    """The model for ``params`` and ``x`` as float32, or a ``ValueError`` saying what misfits."""
    model = make_model(name, hidden_size(params), cell=cell)
    if not isinstance(x, jax.Array):
        x = np.asarray(x)
    if x.ndim != 3 or x.shape[-1] != 1 or x.shape[1] < 1:
        raise ValueError(f"x must have shape [batch, time, 1]; got {tuple(x.shape)}")
    window = jax.ShapeDtypeStruct((1, x.shape[1], 1), jnp.float32)
    expected = _shapes(jax.eval_shape(model.init, jax.random.key(0), window)["params"])
    got = _shapes(params)
    where = f"model={name!r}, cell={cell!r}, hidden={model.hidden} at {x.shape[1]} time steps"
    if set(got) != set(expected):
        raise ValueError(
            f"params do not fit {where}: expected {sorted(expected)}, got {sorted(got)}"
        )
    for path, shape in expected.items():
        if got[path] != shape:
            raise ValueError(
                f"params do not fit {where}: {path} has shape {got[path]}, expected {shape}"
            )
    return model, jnp.asarray(x, jnp.float32)


def predict(name: str, params: Any, x: jax.Array, *, cell: str = "simple") -> jax.Array:
    """Predictions of a model given by its pooling and cell names.

    Args:
      name: a name from :data:`fibjax.models.POOLINGS`.
      params: the model's parameters.
      x: ``<float32>[batch, time, 1]`` windows.
      cell: a name from :data:`fibjax.models.CELLS`.

    Returns:
      ``<float32>[batch]`` predicted next terms (scaled).

    Raises:
      ValueError: ``x`` is not ``[batch, time, 1]``, or ``params`` are not this model's (or
        were made for another window length).

    >>> predict("vanilla", init_params("vanilla", jax.random.key(0)), jnp.zeros((3, 20, 1))).shape
    (3,)
    """
    model, x = _checked(name, cell, params, x)
    return model.apply({"params": params}, x)


def attention_weights(
    params: Any, x: jax.Array, *, model: str = "attention", cell: str = "simple"
) -> jax.Array:
    """An attention model's weights α, read from the pooling module's sown values.

    Args:
      params: parameters of the model.
      x: ``<float32>[batch, time, 1]`` windows.
      model: a pooling name with attention weights.
      cell: a name from :data:`fibjax.models.CELLS`.

    Returns:
      ``<float32>[batch, time]``, non-negative and summing to 1 over time.

    Raises:
      ValueError: the model has no attention weights, or as :func:`predict`.

    >>> params = init_params("attention", jax.random.key(0))
    >>> alpha = attention_weights(params, jnp.zeros((4, 20, 1)))
    >>> alpha.shape, bool(jnp.allclose(alpha.sum(-1), 1.0))
    ((4, 20), True)
    """
    if not pooling_entry(model).has_attention:
        raise ValueError(f"model={model!r} has no attention weights")
    module, x = _checked(model, cell, params, x)
    _, state = module.apply({"params": params}, x, mutable=["intermediates"])
    (alpha,) = state["intermediates"]["pooling"]["alpha"]
    return alpha
