"""Shared fixtures: the notebook's data, the Keras reference vectors and the backends.

On a machine with an accelerator the suite runs on the CPU backend by default, the accelerator
started beside it: the claims about bits (Keras parity over whole epochs at batch 1, equal bits
over device counts) are about the CPU's arithmetic, so they are tested there wherever the suite
runs. The tests that use the ``target`` fixture run on the accelerator too.
"""

import hashlib
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from fibjax.training.runtime import collect_less, xla_flags

# XLA's CPU options as fibjax's command line sets them, before any test starts JAX's backend: the
# tests check the programs that users run.
os.environ["XLA_FLAGS"] = xla_flags(os.environ.get("XLA_FLAGS", ""))
# Python's collector as the command line sets it: at its defaults, full collections over the
# suite's objects took about 20 of its 410 CPU seconds (benchmarks/NOTES.md).
collect_less()


def _accelerator_platforms() -> list[str]:
    """The backends besides the CPU that JAX would start here (asked in a child process, so that
    this process can still choose), or none when no accelerator plugin is installed."""
    plugins = importlib.metadata.entry_points(group="jax_plugins")
    if not plugins and not any(importlib.util.find_spec(n) for n in ("jax_plugins", "libtpu")):
        return []
    probe = (
        "import jax\n"
        "try:\n"
        "    import jax.extend\n"
        "    names = list(jax.extend.backend.backends())\n"
        "except (ImportError, AttributeError):\n"
        "    names = [{'gpu': 'cuda'}.get(p, p) for p in {d.platform for d in jax.devices()}]\n"
        "print(','.join(names))"
    )
    try:
        found = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.SubprocessError):
        return []
    names = found.stdout.strip().split(",") if found.returncode == 0 else []
    return [name for name in names if name and name != "cpu"]


# Several pytest-xdist workers share one accelerator: none takes most of its memory up front.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# Decided once, in the first process; pytest-xdist's workers inherit the choice.
if "JAX_PLATFORMS" not in os.environ:
    _accelerators = _accelerator_platforms()
    if _accelerators:
        # The first platform listed is JAX's default backend.
        os.environ["JAX_PLATFORMS"] = ",".join(["cpu", *_accelerators])

DATA_DIR = Path(__file__).parent / "data"
KERAS_DIR = DATA_DIR / "keras"
# The project's folder of vectors beside the repository, when it is there.
SHARED_KERAS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "keras_vectors"
# File names: keras_{cell}_{pooling}_seed{N}[...].npz; the notebook's pair has no cell.
_VECTOR_NAME = re.compile(r"keras_(?:([a-z0-9]+)_)?([a-z0-9]+)_seed(\d+)(?:[_.-][^/]*)?\.npz")
# The vectors' pooling names, as fibjax names the models.
_KERAS_POOLINGS = {"last": "vanilla", "notebook": "attention"}


@dataclass(frozen=True)
class Target:
    """Where a platform-independent test runs, and which training program it runs there.

    ``"cpu"``: the CPU's program on the CPU. ``"accelerator"``: the accelerator's program on
    the accelerator when there is one, otherwise forced on the CPU (how CI tests that program).
    """

    name: str
    devices: tuple
    layout: str


def accelerator_devices() -> list:
    """The devices of the first non-CPU backend started, or none."""
    import jax

    for platform in os.environ.get("JAX_PLATFORMS", "").split(","):
        if platform and platform != "cpu":
            return jax.devices(platform)
    return [device for device in jax.devices() if device.platform != "cpu"]


def make_target(name: str) -> Target:
    """The :class:`Target` named ``"cpu"`` or ``"accelerator"`` (one device)."""
    import jax

    if name == "cpu":
        return Target("cpu", tuple(jax.devices("cpu")[:1]), "cpu")
    devices = accelerator_devices()[:1] or jax.devices("cpu")[:1]
    return Target("accelerator", tuple(devices), "accelerator")


@pytest.fixture(scope="session", params=["cpu", "accelerator"])
def target(request) -> Target:
    """Each backend's program where it runs: see :class:`Target`."""
    return make_target(request.param)


@pytest.fixture(scope="session")
def accelerator_target() -> Target:
    """The accelerator's program, on the accelerator or forced on the CPU."""
    return make_target("accelerator")


@pytest.fixture(scope="session")
def notebook_data():
    from fibjax.data import fibonacci_windows

    return fibonacci_windows()


@dataclass(frozen=True)
class KerasVectors:
    """Where one file of Keras vectors is and which model made them."""

    path: Path
    model: str
    cell: str
    seed: int

    @property
    def id(self) -> str:
        return self.path.stem

    def load(self) -> dict:
        """The arrays, with ``w0``/``w1`` lists, ``batch_size`` (default 1) and ``epochs``."""
        raw = np.load(self.path)
        out = {key: raw[key] for key in raw.files}
        n = sum(key.startswith("w0_") for key in raw.files)
        out["w0"] = [raw[f"w0_{i}"] for i in range(n)]
        out["w1"] = [raw[f"w1_{i}"] for i in range(n)]
        out["batch_size"] = int(raw["batch_size"]) if "batch_size" in raw.files else 1
        out["epochs"] = len(raw["losses"])
        return out


def discover_keras_vectors() -> list[KerasVectors]:
    """Every file of Keras vectors in tests/data/keras and the shared folder; copies once."""
    folders = [KERAS_DIR, SHARED_KERAS_DIR, SHARED_KERAS_DIR / "variants"]
    found, seen = [], set()
    for folder in folders:
        for path in sorted(folder.glob("keras_*.npz")) if folder.is_dir() else []:
            match = _VECTOR_NAME.fullmatch(path.name)
            if match is None:
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            cell, pooling, seed = match.groups()
            model = _KERAS_POOLINGS.get(pooling, pooling)
            found.append(KerasVectors(path, model, cell or "simple", int(seed)))
    return found


def load_keras_vectors(model: str, cell: str = "simple") -> dict:
    """The seed-0 vectors of one model kept in tests/data/keras."""
    for vectors in discover_keras_vectors():
        in_repo = vectors.path.parent == KERAS_DIR
        if in_repo and (vectors.model, vectors.cell, vectors.seed) == (model, cell, 0):
            return vectors.load()
    raise FileNotFoundError(f"no Keras vectors for model={model!r}, cell={cell!r}")


def hooked_pythonpath(folder, code: str) -> str:
    """A ``PYTHONPATH`` under which a child Python runs ``code`` first (as ``sitecustomize``):
    to slow a process down or pause it where a test needs it, without a hook in fibjax."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(code)
    return os.pathsep.join([str(folder), *filter(None, [os.environ.get("PYTHONPATH")])])


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


def run_in_process(capsys, *args) -> subprocess.CompletedProcess:
    """Runs ``fibjax ARGS`` in this process (``fibjax.cli.entry.main``), its output taken from
    ``capsys``; the result reads as :func:`run_fibjax`'s does."""
    from fibjax.cli.entry import main

    capsys.readouterr()
    status = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["fibjax", *map(str, args)], status, out, err)


@pytest.fixture(scope="session", autouse=True)
def shared_compilation_cache(tmp_path_factory):
    """One JAX compilation cache for the whole session, shared by the xdist workers.

    Many tests compile the same small programs (the same config on the same tiny data); from
    the second time on, XLA's compiled program is read back instead of compiled again. What is
    tested is unchanged: tracing, lowering and running still happen in every test.

    The folder is the session's own (beside the workers' temporary folders), unless
    ``FIBJAX_TEST_COMPILATION_CACHE`` names one: CI names one folder for its two pytest runs,
    so that the end-to-end runs read the programs the first run compiled.
    """
    import jax

    session = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        session = session.parent  # a worker's base folder is popen-gwN in the session's
    named = os.environ.get("FIBJAX_TEST_COMPILATION_CACHE")
    folder = Path(named) if named else session / "jax-compilation-cache"
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    # The fibjax processes that tests start read the same cache (JAX takes these settings from
    # the environment); fibjax's own caches stay as each test sets FIBJAX_CACHE_DIR.
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(folder)
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    # fibjax's default cache (commands run in-process without --cache-dir) goes to the session's
    # folder, not to the user's ~/.cache, and no earlier session's programs are found there.
    os.environ["XDG_CACHE_HOME"] = str(session / "xdg-cache")
    yield
