"""A sweep's grid: its configuration, its arms, and how the arms are cut into shards.

A grid point is one attention form against the vanilla model of the same cell, hidden size,
window, scaling and learning rate, under the same seeds (paired, as in
:mod:`fibjax.studies.compare`). The work is cut into *arms*: one model of one cell, hidden size,
window and scaling, trained at every learning rate of the grid under every seed in one compiled
call (vmapped over learning rate × seed). Each vanilla arm serves every attention form of its
setting. Arms that differ only in their scaling share one compiled program: the windows are its
argument, not its constants (:func:`fibjax.training.seeds.compile_seeds`).

A sweep splits into disjoint shards (``--shard K/N``, for a job array) of about equal cost
(:func:`shard_arms`). The run folder and the training of the arms are in
:mod:`fibjax.studies.sweep`.
"""

from __future__ import annotations

import dataclasses
import itertools
import numbers
from typing import Any, ClassVar

import numpy as np

from fibjax.data import DataConfig
from fibjax.models import BASELINE, POOLINGS, cell_entry, pooling_entry
from fibjax.training.config import TrainConfig, check_seeds, float32

# The grid's axes, in the order of its tables; "model" is the attention form.
AXES = ("cell", "model", "hidden", "window", "scaling", "learning_rate")
# The sweep's options that take lists, by the SweepConfig field that holds each.
AXIS_FIELDS = {
    "cell": "cells",
    "model": "models",
    "hidden": "hiddens",
    "window": "windows",
    "scaling": "scalings",
    "learning_rate": "learning_rates",
}


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A sweep's full specification; validated when built. The defaults are the default sweep.

    Attributes:
      cells: recurrent cells, names from :data:`fibjax.models.CELLS`.
      models: attention forms, names from :data:`fibjax.models.POOLINGS` (each compared with
        the baseline, :data:`fibjax.models.BASELINE`, which is always trained).
      hiddens: hidden sizes.
      windows: window lengths.
      scalings: data scalings (:data:`fibjax.data.SCALINGS`).
      learning_rates: step sizes; all of them train in one compiled call per arm.
      seeds: the seeds of every arm (paired).
      epochs, batch_size, optimizer: the training protocol of every arm.
      n_terms, train_fraction, split_seed: the data set, besides window and scaling.
      alpha: familywise level of the primary tests, corrected over the grid by Holm's method.
      stats_seed: seed of every resampling in the statistics.
      rows, cols: the axes of the heat map (:data:`AXES`).
    """

    cells: tuple[str, ...] = ("simple", "gru")
    models: tuple[str, ...] = ("attention", "additive", "dot")
    hiddens: tuple[int, ...] = (2,)
    windows: tuple[int, ...] = (10, 20, 40)
    scalings: tuple[str, ...] = ("minmax", "log")
    learning_rates: tuple[float, ...] = (1e-3,)
    seeds: tuple[int, ...] = tuple(range(64))
    epochs: int = 30
    batch_size: int = 1
    optimizer: str = "keras_adam"
    n_terms: int = 1200
    train_fraction: float = 0.7
    split_seed: int = 13
    alpha: float = 0.05
    stats_seed: int = 0
    rows: str = "model"
    cols: str = "window"

    # Fields that change the analysis and the figures, not the trained numbers: left out of the
    # arms' provenance, so a finished sweep is analysed and drawn again without training.
    ANALYSIS: ClassVar[tuple[str, ...]] = ("alpha", "stats_seed", "rows", "cols")

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", check_seeds(self.seeds))
        for axis, name in AXIS_FIELDS.items():
            object.__setattr__(self, name, _axis_values(axis, getattr(self, name)))
        if BASELINE in self.models:
            raise ValueError(
                f"models: {BASELINE} is the baseline, always trained; list only the attention"
                " forms to compare with it"
            )
        for model in self.models:
            if not POOLINGS[model].has_attention:
                raise ValueError(f"model {model!r} is not an attention form")
        for name in ("rows", "cols"):
            if getattr(self, name) not in AXES:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is not an axis; choose from {AXES}"
                )
        if self.rows == self.cols:
            raise ValueError(f"rows and cols are both {self.rows!r}; choose two different axes")
        _check_fraction("alpha", self.alpha)
        object.__setattr__(self, "alpha", float(self.alpha))
        if isinstance(self.stats_seed, bool) or not isinstance(self.stats_seed, numbers.Integral):
            raise ValueError(f"stats_seed={self.stats_seed!r} must be an integer >= 0")
        if self.stats_seed < 0:
            raise ValueError(f"stats_seed={self.stats_seed!r} must be an integer >= 0")
        object.__setattr__(self, "stats_seed", int(self.stats_seed))
        # Every setting is validated as the configs that train it validate it.
        protocol = self.train_config(self.cells[0], BASELINE, self.hiddens[0])
        for name in ("epochs", "batch_size"):
            object.__setattr__(self, name, getattr(protocol, name))
        for window, scaling in itertools.product(self.windows, self.scalings):
            data = self.data_config(window, scaling)
        for name in ("n_terms", "train_fraction", "split_seed"):
            object.__setattr__(self, name, getattr(data, name))

    def train_config(self, cell: str, model: str, hidden: int) -> TrainConfig:
        """The :class:`TrainConfig` of one arm (its learning rate is the first of the grid's)."""
        return TrainConfig(
            model=model,
            cell=cell,
            hidden=hidden,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rates[0],
            optimizer=self.optimizer,
        )

    def data_config(self, window: int, scaling: str) -> DataConfig:
        """The :class:`DataConfig` of one window length and scaling."""
        return DataConfig(
            n_terms=self.n_terms,
            window=window,
            train_fraction=self.train_fraction,
            split_seed=self.split_seed,
            scaling=scaling,
        )

    def arms(self) -> list[Arm]:
        """Every arm, in a fixed order: arms that share a compiled program are neighbours."""
        return [
            Arm(cell, model, hidden, window, scaling)
            for cell, hidden, window, model, scaling in itertools.product(
                self.cells, self.hiddens, self.windows, (*self.models, BASELINE), self.scalings
            )
        ]

    def points(self) -> list[dict[str, Any]]:
        """Every grid point's settings (keys :data:`AXES`), in the order of the tables."""
        return [
            dict(zip(AXES, values, strict=True))
            for values in itertools.product(*(getattr(self, AXIS_FIELDS[a]) for a in AXES))
        ]

    def varying_axes(self) -> list[str]:
        """The axes that take more than one value."""
        return [axis for axis in AXES if len(getattr(self, AXIS_FIELDS[axis])) > 1]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record from which :func:`config_from_dict` rebuilds this config."""
        return {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in dataclasses.fields(self)
            for value in [getattr(self, field.name)]
        }


def _axis_values(axis: str, values: Any) -> tuple[Any, ...]:
    if isinstance(values, str) or not isinstance(values, (tuple, list)):
        raise ValueError(f"{AXIS_FIELDS[axis]}={values!r} must be a sequence")
    values = tuple(values)
    if not values:
        raise ValueError(f"{AXIS_FIELDS[axis]} is empty; give at least one {axis}")
    if axis == "cell":
        for cell in values:
            cell_entry(cell)
    elif axis == "model":
        for model in values:
            pooling_entry(model)
    elif axis in ("hidden", "window"):
        for value in values:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{axis}={value!r} must be an integer >= 1")
        values = tuple(int(v) for v in values)
    elif axis == "learning_rate":
        values = tuple(
            dataclasses.replace(TrainConfig(BASELINE), learning_rate=v).learning_rate
            for v in values
        )
    # Learning rates are compared as training sees them: two that round to one float32 would be
    # two names for one grid point (and enlarge the family Holm corrects for).
    seen = [float32(v) for v in values] if axis == "learning_rate" else list(values)
    if len(set(seen)) != len(seen):
        distinct = len(set(values)) == len(values)
        same = " (equal in float32, the precision training uses)" if distinct else ""
        raise ValueError(f"{AXIS_FIELDS[axis]}={list(values)} names a value twice{same}")
    return values


def _check_fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise ValueError(f"{name}={value!r} must be a number strictly between 0 and 1")


def config_from_dict(record: dict[str, Any]) -> SweepConfig:
    """Rebuilds a :class:`SweepConfig` from :meth:`SweepConfig.to_dict` (validated again)."""
    try:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(record).items()}
        return SweepConfig(**fields)
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a fibjax sweep configuration ({error})") from None


@dataclasses.dataclass(frozen=True)
class Arm:
    """One model of one setting, trained at every learning rate under every seed."""

    cell: str
    model: str
    hidden: int
    window: int
    scaling: str

    @property
    def name(self) -> str:
        """The arm's file name stem, e.g. ``gru-dot-h2-w20-log``."""
        return f"{self.cell}-{self.model}-h{self.hidden}-w{self.window}-{self.scaling}"

    def program(self) -> tuple[str, str, int, int]:
        """What its compiled program depends on: arms equal here share one."""
        return (self.cell, self.model, self.hidden, self.window)


# ----------------------------------------------------------------------------- shards


# More shards than this have no use (a grid has far fewer arms), and the cost arithmetic of
# shard_arms must stay within int64.
MAX_SHARDS = 1_000_000


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as ``(K, N)``, with ``1 <= K <= N``.

    >>> parse_shard("2/5")
    (2, 5)
    """
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r} must be K/N, e.g. 2/8") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard {text!r}: K must be from 1 to N")
    if n > MAX_SHARDS:
        raise ValueError(f"--shard {text!r}: N must be at most {MAX_SHARDS:,}")
    return k, n


def arm_cost(config: SweepConfig, arm: Arm) -> float:
    """The relative training cost of an arm: its time steps × its per-seed working set."""
    gates = cell_entry(arm.cell).gates
    return float(arm.window * arm.hidden * gates * pooling_entry(arm.model).cost)


def shard_arms(config: SweepConfig, shard: tuple[int, int] | None) -> list[Arm]:
    """The arms of shard ``K/N``: the ``K``-th of ``N`` contiguous runs of :meth:`SweepConfig.arms`
    of about equal cost (all arms when ``shard`` is ``None``).

    With at least ``N`` compiled programs in the grid, the arms of one program stay in one
    shard, so no program is compiled twice. The parts are disjoint and together hold every arm;
    a shard may be empty when there are more shards than arms.

    >>> config = SweepConfig(cells=("simple",), models=("dot",), windows=(6,), n_terms=80,
    ...                      scalings=("minmax", "log"), seeds=(0,))
    >>> [a.name for a in shard_arms(config, (2, 2))]
    ['simple-vanilla-h2-w6-minmax', 'simple-vanilla-h2-w6-log']
    """
    arms = config.arms()
    if shard is None:
        return arms
    k, n = shard
    # Whole programs' arms when there are enough programs to go round, so that no program is
    # compiled by two shards; single arms otherwise.
    groups = [list(g) for _, g in itertools.groupby(arms, key=Arm.program)]
    if len(groups) < n:
        groups = [[arm] for arm in arms]
    costs = np.cumsum([sum(arm_cost(config, arm) for arm in group) for group in groups])
    # A group goes to the part its cost's midpoint falls in.
    midpoints = costs - np.diff(np.concatenate([[0.0], costs])) / 2
    part = np.minimum((midpoints / costs[-1] * n).astype(int), n - 1)
    return [arm for group, p in zip(groups, part, strict=True) if p == k - 1 for arm in group]
