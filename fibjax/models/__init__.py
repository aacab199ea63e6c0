"""Flax (Linen) models composed of parts, with Keras's semantics and initialisers.

A model is a recurrent cell (:data:`CELLS`: ``simple``, ``gru``, ``lstm``) followed by a pooling
(:data:`POOLINGS`, whose names are the model names: ``vanilla``, ``attention``, ``additive``,
``dot``), then ``Dense(1, tanh)``.
"""

from fibjax.models.cells import (
    GRU,
    LSTM,
    GRUCell,
    LSTMCell,
    RecurrentCell,
    RecurrentLayer,
    SimpleRNN,
    SimpleRNNCell,
    gru_step,
    lstm_step,
    scan_cell,
)
from fibjax.models.initializers import attention_normal, glorot_uniform, orthogonal, zeros
from fibjax.models.model import (
    Head,
    RecurrentModel,
    attention_weights,
    count_params,
    describe_model,
    hidden_size,
    init_params,
    make_model,
    predict,
)
from fibjax.models.poolings import (
    AdditiveAttention,
    Attention,
    AttentionPooling,
    DotAttention,
    LastState,
)
from fibjax.models.registry import (
    CELL_NAMES,
    CELLS,
    MODEL_NAMES,
    POOLINGS,
    CellEntry,
    PoolingEntry,
    cell_entry,
    pooling_entry,
)

__all__ = [
    "CELLS",
    "CELL_NAMES",
    "GRU",
    "LSTM",
    "MODEL_NAMES",
    "POOLINGS",
    "AdditiveAttention",
    "Attention",
    "AttentionPooling",
    "CellEntry",
    "DotAttention",
    "GRUCell",
    "Head",
    "LSTMCell",
    "LastState",
    "PoolingEntry",
    "RecurrentCell",
    "RecurrentLayer",
    "RecurrentModel",
    "SimpleRNN",
    "SimpleRNNCell",
    "attention_normal",
    "attention_weights",
    "cell_entry",
    "count_params",
    "describe_model",
    "glorot_uniform",
    "gru_step",
    "hidden_size",
    "init_params",
    "lstm_step",
    "make_model",
    "orthogonal",
    "pooling_entry",
    "predict",
    "scan_cell",
    "zeros",
]
