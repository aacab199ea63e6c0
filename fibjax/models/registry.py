"""The parts a model is made of, by name: recurrent cells and poolings.

Adding a cell or a pooling is one module (in :mod:`fibjax.models.cells` or
:mod:`fibjax.models.poolings`) and one entry here; the rest of the package reads these entries.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from fibjax.models import cells, poolings


@dataclasses.dataclass(frozen=True)
class CellEntry:
    """A recurrent cell.

    Attributes:
      layer: a :class:`fibjax.models.cells.RecurrentLayer` subclass, built as
        ``layer(features, return_sequences=..., unroll=..., seeds_last_form=...)``.
      label: the Keras layer's name, as in ``"GRU(8)"``.
    """

    layer: type[cells.RecurrentLayer]
    label: str

    @property
    def gates(self) -> int:
        """k in the cell's fused ``[H, kH]`` recurrent kernel: its work per step, relative to
        ``SimpleRNN``'s."""
        return self.layer.CELL.GATES

    @property
    def keras_weights(self) -> tuple[str, ...]:
        """The cell's parameter names in Keras's ``get_weights()`` order."""
        return self.layer.CELL.KERAS_WEIGHTS


@dataclasses.dataclass(frozen=True)
class PoolingEntry:
    """A pooling of the states over time.

    Attributes:
      module: a :class:`fibjax.models.poolings.Pooling` from the states to
        ``<float32>[batch, H]``; it takes every state when its ``SEQUENCES`` is true, else only
        the last.
      label: how reports name it, as in ``"additive attention"``.
      has_attention: it sows attention weights α (:func:`fibjax.models.attention_weights`).
      window_bound: its parameters fit one window length only (a per-step weight).
      cost: training work per seed relative to the last-state model, for
        :func:`fibjax.training.layout.default_chunk`.
    """

    module: type[nn.Module]
    label: str
    has_attention: bool
    window_bound: bool = False
    cost: int = 1

    @property
    def sequences(self) -> bool:
        """Whether the pooling reads every state (the recurrent layer keeps them all)."""
        return self.module.SEQUENCES

    @property
    def keras_weights(self) -> tuple[str, ...]:
        """The pooling's parameter names in Keras's ``get_weights()`` order."""
        return self.module.KERAS_WEIGHTS


CELLS: dict[str, CellEntry] = {
    "simple": CellEntry(cells.SimpleRNN, "SimpleRNN"),
    "gru": CellEntry(cells.GRU, "GRU"),
    "lstm": CellEntry(cells.LSTM, "LSTM"),
}

# cost: measured for the notebook's attention (benchmarks/NOTES.md: 256 last-state or 128
# attention seeds per chunk); the additive and dot forms also keep every state and are given the
# same until measured.
POOLINGS: dict[str, PoolingEntry] = {
    "vanilla": PoolingEntry(poolings.LastState, "last state", has_attention=False),
    "attention": PoolingEntry(
        poolings.AttentionPooling, "attention", has_attention=True, window_bound=True, cost=2
    ),
    "additive": PoolingEntry(
        poolings.AdditiveAttention, "additive attention", has_attention=True, cost=2
    ),
    "dot": PoolingEntry(poolings.DotAttention, "dot-product attention", has_attention=True, cost=2),
}

MODEL_NAMES = tuple(POOLINGS)
CELL_NAMES = tuple(CELLS)

# The model every attention form is compared against: the same cell, its last state pooled.
BASELINE = "vanilla"
# The notebook's comparison, the default one: its attention model against the baseline.
NOTEBOOK_MODELS = ("attention", BASELINE)
DEFAULT_CELL = "simple"


def cell_entry(cell: str) -> CellEntry:
    """The registry entry of a cell name; ``ValueError`` naming the choices otherwise."""
    if cell not in CELLS:
        raise ValueError(f"cell={cell!r} is unknown; choose one of {CELL_NAMES}")
    return CELLS[cell]


def pooling_entry(model: str) -> PoolingEntry:
    """The registry entry of a model (pooling) name; ``ValueError`` naming the choices."""
    if model not in POOLINGS:
        raise ValueError(f"model={model!r} is unknown; choose one of {MODEL_NAMES}")
    return POOLINGS[model]
