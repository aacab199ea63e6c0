"""Shared fixtures: the notebook's data and the Keras reference vectors."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

DATA_DIR = Path(__file__).parent / "data"
N_KERAS_WEIGHTS = {"vanilla": 5, "attention": 7}


@pytest.fixture(scope="session")
def notebook_data():
    from fibjax.data import fibonacci_windows

    return fibonacci_windows()


def load_keras_vectors(model: str) -> dict:
    """The Keras vectors of one model: ``w0``/``w1`` lists, predictions and the epoch loss."""
    raw = np.load(DATA_DIR / f"keras_{model}_seed0.npz")
    n = N_KERAS_WEIGHTS[model]
    out = {key: raw[key] for key in raw.files}
    out["w0"] = [raw[f"w0_{i}"] for i in range(n)]
    out["w1"] = [raw[f"w1_{i}"] for i in range(n)]
    return out


def run_fibjax(*args, cache="off", timeout=300) -> subprocess.CompletedProcess:
    """Runs ``python -m fibjax ARGS`` in a subprocess (compilation cache off unless given)."""
    env = dict(os.environ, FIBJAX_CACHE_DIR=str(cache))
    return subprocess.run(
        [sys.executable, "-m", "fibjax", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
