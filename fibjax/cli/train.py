"""``fibjax train``: one model under one seed, as the notebook trains it."""

from __future__ import annotations

import argparse
import time

from fibjax.cli.options import (
    DEFAULT_MODEL,
    MODELS,
    UsageError,
    add_data_options,
    add_runtime_options,
    add_training_options,
    data_config_from,
    training_options,
)
from fibjax.cli.processes import configure_runtime


def add_parser(commands) -> None:
    """Adds ``fibjax train`` to the sub-commands."""
    train = commands.add_parser("train", help="train one model under one seed, as the notebook")
    train.add_argument(
        "--model", default=None, help=f"the pooling after the cell: {MODELS} ({DEFAULT_MODEL})"
    )
    train.add_argument("--seed", type=int, default=0, help="PRNG seed (0)")
    add_data_options(train)
    add_training_options(train)
    add_runtime_options(train)
    train.set_defaults(handler=_run_train)


def train_config_from(args: argparse.Namespace):
    """The validated :class:`fibjax.training.config.TrainConfig` of ``fibjax train``'s options."""
    from fibjax.models import NOTEBOOK_MODELS
    from fibjax.training.config import TrainConfig

    model = NOTEBOOK_MODELS[0] if args.model is None else args.model
    return TrainConfig(model=model, **training_options(args))


def _run_train(args: argparse.Namespace) -> int:
    try:
        data_config = data_config_from(args)
        config = train_config_from(args)
        from fibjax.training.config import check_seeds

        (seed,) = check_seeds([args.seed])
    except ValueError as error:
        raise UsageError(str(error)) from None
    configure_runtime(args)

    import jax

    from fibjax.data import windows_from_config
    from fibjax.models import count_params
    from fibjax.training.memory import check_memory
    from fibjax.training.program import compile_program, make_train
    from fibjax.training.progress import Progress

    data = windows_from_config(data_config)
    try:
        check_memory(config, data, 1, jax.local_devices()[:1])
    except ValueError as error:
        raise UsageError(str(error)) from None
    with Progress() as progress:
        progress.phase(f"compiling {config.model} ({config.cell})")
        train = make_train(config, data)  # no host callback, so the program can be cached
        key = jax.random.key(seed)
        compiled = compile_program(jax.jit(train).lower(key), jax.default_backend())
        progress.phase(f"training {config.model} ({config.epochs} epochs)")
        start = time.perf_counter()
        result = jax.block_until_ready(compiled(key))
        seconds = time.perf_counter() - start
    _print_fit(config, seed, result, count_params(result.params), seconds)
    return 0


def _print_fit(config, seed: int, result, n_params: int, seconds: float) -> None:
    from fibjax.models import describe_model

    layers = describe_model(config.model, config.cell, config.hidden)
    print(f"Model: {config.model} ({layers}), {n_params} parameters, seed {seed}")
    for epoch, loss in enumerate(result.epoch_losses.tolist(), start=1):
        print(f"Epoch {epoch}/{config.epochs} - loss: {loss:.4e}")
    if int(result.diverged_epoch):
        print(f"Diverged: loss or weights not finite after epoch {int(result.diverged_epoch)}")
    print(f"Train set MSE = {float(result.train_mse):.6e}")
    print(f"Test set MSE = {float(result.test_mse):.6e}")
    print(f"({config.epochs} epochs in {seconds:.2f} s)")
