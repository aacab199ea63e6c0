"""Seeds per device and per chunk: the preferred chunk follows the registry of parts."""

from fibjax.training.config import TrainConfig
from fibjax.training.layout import default_chunk


def test_default_chunk_follows_the_registry():
    chunk = default_chunk
    assert chunk(TrainConfig("vanilla"), 20, "cpu") == 256
    assert chunk(TrainConfig("attention"), 20, "cpu") == 128
    assert chunk(TrainConfig("dot", cell="lstm"), 20, "cpu") == 32
    assert chunk(TrainConfig("dot", cell="lstm"), 20, "gpu") is None
