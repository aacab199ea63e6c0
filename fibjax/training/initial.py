"""The seeds' initial weights, drawn before training by a compiled program of their own.

On a CPU, a training program that drew its initial weights itself spent a quarter to a third of
its compile time on them (64 seeds, 30 epochs: the vanilla model's XLA compile 0.93 s with them,
0.63 s without; the GRU with additive attention 1.68 s and 1.24 s), and every model of a sweep
drew them again at each window. The weights do not depend on the windows, except for a pooling
with a weight per time step (``window_bound``), whose rows are all initialised alike (its
``STEP_ROWS``), so one program draws them for a window of one step, for every window and scaling
of a model; and for every model of a study with the same cell and hidden size, which share their
recurrent and output weights: the default sweep compiles 2 such programs for its 24 training
programs.
Each seed's weights are those the training would draw (the first key of
:func:`fibjax.training.program.split_key`), so the results are the same bits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from fibjax.models import make_model, pooling_entry, repeat_steps
from fibjax.training import program_cache as program_cache_lib
from fibjax.training.config import TrainConfig, seed_keys
from fibjax.training.program import compile_program, split_key


@dataclasses.dataclass(frozen=True)
class SeedInitials:
    """The compiled program that draws the initial weights of a list of seeds, and which of
    its models to take; call it with the seeds (``<uint32>[padded]``, sharded) to get that
    model's weights as drawn, each leaf ``[padded, ...]`` (for a model whose per-step rows are
    drawn for one step, the training program repeats them: :func:`to_window`).

    Attributes:
      compiled: the program; it gives ``{model: weights}`` for every model it draws.
      model: the model's pooling.
    """

    compiled: Any
    model: str

    def __call__(self, seeds: jax.Array) -> Any:
        return self.compiled(seeds)[self.model]


def to_window(drawn: Any, model: str, window: int | None) -> Any:
    """Seeds' initial weights as drawn (each leaf ``[seeds, ...]``) made the model's for its
    window: the per-step rows of a model drawn for one step repeated to ``window`` steps
    (:func:`fibjax.models.repeat_steps`); ``drawn`` itself when ``window`` is ``None``.

    The training program calls it on its arguments, so that no program of its own runs between
    the drawing and the training (the default sweep had compiled six, one a model and window,
    on the thread that trains).

    >>> import numpy as np
    >>> drawn = {"pooling": {"bias": np.zeros((3, 1, 1))}, "head": {"bias": np.zeros((3, 1))}}
    >>> to_window(drawn, "attention", 20)["pooling"]["bias"].shape
    (3, 20, 1)
    >>> to_window(drawn, "attention", None) is drawn
    True
    """
    return drawn if window is None else repeat_steps(drawn, model, window, axis=1)


def init_window(config: TrainConfig, window: int) -> int:
    """The window the initial weights are drawn for: ``window`` when the model's pooling has a
    weight per time step that is not the same at every step, else 1 (the weights are the same
    for every window, up to the per-step rows repeated).

    >>> init_window(TrainConfig("attention"), 20), init_window(TrainConfig("dot"), 20)
    (1, 1)
    """
    return 1 if _one_step(config.model) else window


def _one_step(model: str) -> bool:
    """Whether a model's initial weights, drawn for one step, serve every window."""
    entry = pooling_entry(model)
    return not entry.window_bound or bool(entry.module.STEP_ROWS)


def _initial_program(
    config: TrainConfig, models: tuple[str, ...], window: int, in_features: int, mesh
) -> Callable[[jax.Array], Any]:
    """``jit(shard_map(...))`` drawing each seed's initial weights of every model in ``models``
    (``config``'s cell and hidden size), as float32."""
    made = {name: make_model(name, config.hidden, cell=config.cell) for name in models}
    x = jnp.zeros((1, window, in_features), jnp.float32)

    def initial(key):
        init_key = split_key(key)[0]
        return {
            name: jax.tree.map(
                lambda p: jnp.asarray(p, jnp.float32), model.init(init_key, x)["params"]
            )
            for name, model in made.items()
        }

    seeds = P("seeds")
    return jax.jit(
        jax.shard_map(
            lambda local: jax.vmap(initial)(seed_keys(local)),
            mesh=mesh,
            in_specs=seeds,
            out_specs=seeds,
            check_vma=False,
        )
    )


def initials_program(
    config: TrainConfig,
    window: int,
    in_features: int,
    n_padded: int,
    mesh: jax.sharding.Mesh,
    program_cache: Path | None,
    along: Sequence[str] = (),
) -> tuple[Callable[[], SeedInitials], Any, int | None]:
    """The program drawing ``n_padded`` seeds' initial weights on ``mesh``: how to compile it,
    the shapes of what it draws for ``config``'s model, and the window to repeat them to.

    With ``along``, other models (pooling names) of the same cell and hidden size, one program
    draws all their weights: a study that trains them compiles it once. The models share their
    recurrent and output weights, so the program compiles in less time than theirs apart (the
    SimpleRNN's four: 0.9 s of XLA time against 2.1 s; benchmarks/NOTES.md).

    Returns:
      A function that compiles the program (or takes it from this process's memo,
      :data:`fibjax.training.program_cache.INITIALS`) and returns its :class:`SeedInitials`,
      to run beside the training program's compilation; a tree of ``jax.ShapeDtypeStruct``
      of the weights it draws, sharded over the seeds, for lowering the training program that
      takes them; and ``window``, or ``None`` when they were drawn for it: a model drawn for a
      one-step window has its per-step rows, if any, repeated to ``window`` by the training
      program (:func:`to_window`). The program is lowered first, read from ``program_cache`` (the
      folder of saved programs) when it is there.
    """
    drawn = init_window(config, window)
    # Drawn together: the models drawn for a one-step window (each is its own otherwise).
    models = (config.model,)
    if drawn == 1:
        others = {name for name in along if _one_step(name)}
        models = tuple(sorted({config.model, *others}))
    compiled, shapes = _drawn_program(
        config, models, drawn, in_features, n_padded, mesh, program_cache
    )

    def initials() -> SeedInitials:
        return SeedInitials(compiled(), config.model)

    # Drawn for fewer steps: repeating the per-step rows (none for most models) makes them the
    # window's (fibjax.models.repeat_steps knows which rows).
    return initials, shapes[config.model], (window if drawn != window else None)


def _drawn_program(
    config: TrainConfig,
    models: tuple[str, ...],
    window: int,
    in_features: int,
    n_padded: int,
    mesh: jax.sharding.Mesh,
    program_cache: Path | None,
) -> tuple[Callable[[], Any], Any]:
    """How to compile (or take from the memo) the program drawing ``models``' weights for
    ``window``, and the shapes of what it draws, ``{model: weights}``."""
    devices = list(mesh.devices.flat)
    parts = {
        "initial": {
            "models": list(models),
            "cell": config.cell,
            "hidden": config.hidden,
            "window": window,
            "in_features": in_features,
        },
        "padded_seeds": n_padded,
        "devices": [devices[0].platform, devices[0].device_kind, len(devices)],
    }
    key = program_cache_lib.memo_key(parts, devices, program_cache)
    known = program_cache_lib.INITIALS.get(key)
    if known is not None:
        return (lambda: known[0]), known[1]
    sharding = jax.sharding.NamedSharding(mesh, P("seeds"))
    seeds = jax.ShapeDtypeStruct((n_padded,), np.uint32, sharding=sharding)

    def trace():
        return _initial_program(config, models, window, in_features, mesh)

    # Lowered here, through the folder of saved programs when there is one: a warm run reads the
    # program and its shapes instead of tracing the model's initialisation again (a warm default
    # comparison had taken 0.5 s longer without; benchmarks/NOTES.md).
    if program_cache is None:
        lowered = trace().lower(seeds)
    else:
        lowered = program_cache_lib.lower_cached(program_cache, parts, trace, seeds)
    shapes = jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), lowered.out_info
    )

    def make():
        return compile_program(lowered, devices[0].platform), shapes

    def compiled():
        return program_cache_lib.INITIALS.get_or_make(key, make)[0]

    return compiled, shapes
