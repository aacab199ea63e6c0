"""The program for the backend, and seeds per device and per chunk (which follow the registry)."""

import re

import jax
import pytest

from fibjax.data import fibonacci_windows
from fibjax.training.config import TrainConfig
from fibjax.training.layout import (
    ACCELERATOR_LAYOUT,
    CPU_LAYOUT,
    LAYOUTS,
    default_chunk,
    program_layout,
)
from fibjax.training.program import fit
from fibjax.training.seeds import compile_seeds

TINY = fibonacci_windows(n_terms=40, window=3)


def test_default_chunk_follows_the_registry():
    chunk = default_chunk
    assert chunk(TrainConfig("vanilla"), 20, CPU_LAYOUT) == 256
    assert chunk(TrainConfig("attention"), 20, CPU_LAYOUT) == 128
    assert chunk(TrainConfig("dot", cell="lstm"), 20, CPU_LAYOUT) == 32
    # The accelerators' program trains all of a device's seeds at once.
    assert chunk(TrainConfig("dot", cell="lstm"), 20, ACCELERATOR_LAYOUT) is None


@pytest.mark.parametrize(
    "layout, platform, expected",
    [
        ("auto", "cpu", CPU_LAYOUT),
        ("auto", "gpu", ACCELERATOR_LAYOUT),
        ("auto", "cuda", ACCELERATOR_LAYOUT),
        ("auto", "tpu", ACCELERATOR_LAYOUT),
        ("cpu", "gpu", CPU_LAYOUT),
        ("accelerator", "cpu", ACCELERATOR_LAYOUT),
        (ACCELERATOR_LAYOUT, "cpu", ACCELERATOR_LAYOUT),
    ],
)
def test_the_layout_follows_the_platform_unless_forced(layout, platform, expected):
    assert program_layout(layout, platform) == expected


@pytest.mark.parametrize("bad", ["GPU", "", "gpu", None, 1, ["cpu"]])
def test_unknown_layouts_are_refused_by_name(bad):
    with pytest.raises(ValueError, match=re.escape(f"is unknown; choose one of {LAYOUTS}")):
        program_layout(bad, "cpu")


def test_a_bad_layout_is_refused_before_compiling():
    with pytest.raises(ValueError, match="layout='fast' is unknown"):
        compile_seeds(TrainConfig("vanilla", epochs=1), TINY, [0], layout="fast")
    with pytest.raises(ValueError, match="layout='fast' is unknown"):
        fit(TrainConfig("vanilla", epochs=1), TINY, key=jax.random.key(0), layout="fast")
