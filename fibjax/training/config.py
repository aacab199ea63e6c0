"""What one training takes and gives: :class:`TrainConfig`, :class:`Windows`, :class:`FitResult`.

Also the checks of seeds (:func:`check_seeds`, :data:`MAX_SEED`) and their keys
(:func:`seed_keys`). :class:`FitResult` and :class:`Windows` are registered with ``jax.export``
under their saved-format names, so that traced programs that take or return them can be kept
on disk (:mod:`fibjax.training.program_cache`).
"""

from __future__ import annotations

import collections
import collections.abc
import dataclasses
import math
import numbers
from collections.abc import Sequence
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from fibjax.data import FibonacciData
from fibjax.models import cell_entry, pooling_entry
from fibjax.training.optim import OPTIMIZERS

MAX_COUNT = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How one model is trained; validated when built. The defaults are the notebook's protocol.

    Attributes:
      model: the pooling, a name from :data:`fibjax.models.POOLINGS` (``"vanilla"``: the last
        state; ``"attention"``: the notebook's).
      hidden: hidden units of the recurrent cell.
      epochs: passes over the training windows.
      batch_size: windows per update; a last, smaller batch ends each epoch when it does not
        divide the training set, as in Keras.
      learning_rate: the optimizer's step size.
      optimizer: a name from :data:`fibjax.training.optim.OPTIMIZERS`.
      shuffle: a fresh permutation of the training windows each epoch (Keras's ``fit`` default).
      unroll: time steps unrolled per iteration of the RNN's scan; changes speed, not results
        beyond float32 rounding.
      record_step_losses: also return the loss of every update (memory grows with steps).
      cell: the recurrent cell, a name from :data:`fibjax.models.CELLS`.
    """

    model: str
    hidden: int = 2
    epochs: int = 30
    batch_size: int = 1
    learning_rate: float = 1e-3
    optimizer: str = "keras_adam"
    shuffle: bool = True
    unroll: int = 1
    record_step_losses: bool = False
    cell: str = "simple"

    def __post_init__(self) -> None:
        pooling_entry(self.model)
        cell_entry(self.cell)
        if self.optimizer not in OPTIMIZERS:
            known = tuple(sorted(OPTIMIZERS))
            raise ValueError(f"optimizer={self.optimizer!r} is unknown; choose one of {known}")
        for name in ("hidden", "epochs", "batch_size", "unroll"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name}={value!r} must be an integer >= 1")
            if value > MAX_COUNT:  # the programs count epochs, steps and units in int32
                raise ValueError(f"{name}={value!r} is too large; at most {MAX_COUNT}")
            # NumPy integers become Python ones, so the config compares and saves as one.
            object.__setattr__(self, name, int(value))
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr):
            raise ValueError(f"learning_rate={lr!r} must be a positive finite number")
        if lr <= 0:
            raise ValueError(f"learning_rate={lr!r} must be a positive finite number")
        if not 0 < float32(lr) < math.inf:  # 1e-50 would train nothing, 1e300 diverge at once
            info = np.finfo(np.float32)
            raise ValueError(
                f"learning_rate={lr!r} is {float32(lr)} in float32, the precision training uses;"
                f" give one from {info.smallest_subnormal:.3g} to {info.max:.3g}"
            )
        object.__setattr__(self, "learning_rate", float(lr))
        for name in ("shuffle", "record_step_losses"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False")


@flax.struct.dataclass
class FitResult:
    """What one training run gives.

    Under :func:`fibjax.training.seeds.fit_seeds` every field has a leading seed axis.

    Attributes:
      params: the trained parameters.
      epoch_losses: ``<float32>[epochs]`` mean training loss of each epoch, as Keras logs it.
      train_mse: ``<float32>[]`` MSE on the training windows after training (Keras's
        ``evaluate``).
      test_mse: ``<float32>[]`` MSE on the test windows after training.
      diverged_epoch: ``<int32>[]`` the first epoch (counting from 1) after which the loss or a
        parameter was not finite; 0 when training stayed finite.
      step_losses: ``<float32>[epochs, steps]`` the loss of every update, or ``None`` unless
        ``record_step_losses`` was set.
    """

    params: Any
    epoch_losses: jax.Array
    train_mse: jax.Array
    test_mse: jax.Array
    diverged_epoch: jax.Array
    step_losses: jax.Array | None = None

    def __repr__(self) -> str:
        """One line: the runs, epochs, test MSE (median and range over seeds) and divergences.

        >>> FitResult({}, np.full((3, 2), 0.5), np.zeros(3), np.array([1e-4, 2e-4, 4e-4]),
        ...           np.array([0, 0, 1]))
        FitResult(3 seeds, 2 epochs; test MSE median 1.50e-04 [1.00e-04, 2.00e-04]; 1 diverged)
        """
        try:
            test_mse = np.asarray(self.test_mse, np.float64)
            diverged = np.asarray(self.diverged_epoch) > 0
        except Exception:  # noqa: BLE001 - traced values have no numbers to show
            shapes = jax.tree.map(lambda leaf: getattr(leaf, "shape", None), self)
            return f"FitResult(traced; test_mse shape {shapes.test_mse})"
        epochs = np.shape(self.epoch_losses)[-1]
        runs = " x ".join(map(str, test_mse.shape)) or "1"
        kept = test_mse[~diverged & np.isfinite(test_mse)]
        if kept.size == 0:
            mse = "no finite test MSE"
        elif kept.size == 1:
            mse = f"test MSE {kept[0]:.2e}"
        else:
            mse = f"test MSE median {np.median(kept):.2e} [{kept.min():.2e}, {kept.max():.2e}]"
        return (
            f"FitResult({runs} seed{'s' if test_mse.size != 1 else ''}, {epochs} epochs;"
            f" {mse}; {int(diverged.sum())} diverged)"
        )


# Lets jax.export save programs that return a FitResult (fibjax.training.program_cache).
jax.export.register_pytree_node_serialization(
    FitResult,
    serialized_name="fibjax.train.FitResult",
    serialize_auxdata=lambda aux: b"",
    deserialize_auxdata=lambda data: (),
)


@flax.struct.dataclass
class Windows:
    """A data set's windows as float32 arrays: an argument of the compiled training.

    The training programs take the windows as an argument, not as constants, so one compiled
    program serves every data set of the same shapes (another scaling or split).

    Attributes:
      train_x: ``<float32>[n_train, window, 1]``.
      train_y: ``<float32>[n_train]``.
      test_x: ``<float32>[n_test, window, 1]``.
      test_y: ``<float32>[n_test]``.
    """

    train_x: jax.Array
    train_y: jax.Array
    test_x: jax.Array
    test_y: jax.Array

    @classmethod
    def of(cls, data: FibonacciData) -> Windows:
        """The windows of ``data``, cast to float32.

        >>> from fibjax.data import fibonacci_windows
        >>> Windows.of(fibonacci_windows(n_terms=60)).train_x.shape
        (28, 20, 1)
        """
        arrays = (data.train_x, data.train_y, data.test_x, data.test_y)
        return cls(*(jnp.asarray(a, jnp.float32) for a in arrays))

    def shapes(self) -> dict[str, list[int]]:
        """Each array's shape, by name (what a compiled program is specialised to)."""
        return {f.name: list(getattr(self, f.name).shape) for f in dataclasses.fields(self)}


# Lets jax.export save programs that take Windows (fibjax.training.program_cache).
jax.export.register_pytree_node_serialization(
    Windows,
    serialized_name="fibjax.train.Windows",
    serialize_auxdata=lambda aux: b"",
    deserialize_auxdata=lambda data: (),
)


MAX_SEED = 2**32 - 1  # jax.random.key folds larger seeds onto smaller ones without x64


def float32(value: float) -> float:
    """``value`` as training sees it: rounded to float32 (``inf`` past its range, no warning).

    >>> float32(0.1) == 0.1, float32(1e-50), float32(1e300)
    (False, 0.0, inf)
    """
    with np.errstate(over="ignore"):
        return float(np.float32(value))


def check_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    """Validates a list of seeds: non-empty, distinct integers in ``[0, 2**32)``.

    Any ordered collection of integers is taken in its order: a list, tuple, range, generator,
    or a one-dimensional NumPy or JAX integer array. Sets and mappings are refused: the results
    come back in the seeds' order, which they do not have.

    >>> check_seeds([0, 1, 2])
    (0, 1, 2)
    >>> check_seeds(np.arange(2, dtype=np.uint32))
    (0, 1)
    """
    if isinstance(seeds, (set, frozenset, collections.abc.Mapping)):
        raise ValueError(
            f"seeds must be in an order (a list, tuple, range or array), not a"
            f" {type(seeds).__name__}: the results come back in the seeds' order"
        )
    if hasattr(seeds, "shape") and hasattr(seeds, "dtype"):  # a NumPy or JAX array
        array = np.asarray(seeds)
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise ValueError(
                f"seeds given as an array must be one-dimensional integers, not"
                f" {array.dtype}{list(array.shape)}"
            )
        seeds = array.tolist()
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds is empty; give at least one seed")
    # Plain ints are checked in bulk: a per-seed isinstance check of numbers.Integral costs
    # about a microsecond, a fifth of a second for 200,000 seeds.
    plain = all(type(s) is int for s in seeds)
    if not plain or min(seeds) < 0 or max(seeds) > MAX_SEED:
        for s in seeds:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral) or not 0 <= s <= MAX_SEED:
                raise ValueError(f"seed {s!r} must be an integer from 0 to {MAX_SEED}")
        seeds = tuple(int(s) for s in seeds)
    if len(set(seeds)) != len(seeds):
        counts = collections.Counter(seeds)
        duplicated = sorted(s for s, n in counts.items() if n > 1)
        shown = ", ".join(map(str, duplicated[:10])) + (", ..." if len(duplicated) > 10 else "")
        raise ValueError(f"seeds must be distinct; repeated: [{shown}]")
    return seeds


def seed_keys(seeds: Sequence[int] | jax.Array) -> jax.Array:
    """One PRNG key per seed: seed ``s`` means ``jax.random.key(s)``; ``key<fry>[n_seeds]``."""
    return jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))
