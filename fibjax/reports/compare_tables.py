"""The comparison's tables: ``results.csv`` and ``curves.npz``, written and read back checked.

:func:`write_tables` turns the saved arms into ``results.csv`` (one row per seed and arm) and
``curves.npz`` (per-epoch losses); :func:`load_results` reads every saved file of a finished run
back, each checked against ``run.json`` and against the others; :func:`stats_input` gives a
table's test MSEs as the statistics take them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fibjax.results import storage
from fibjax.studies.compare import CompareConfig, load_arm, load_run

RESULTS_HEADER = (
    "seed",
    "model",
    "cell",
    "hidden",
    "train_mse",
    "test_mse",
    "final_loss",
    "diverged",
    "diverged_epoch",
)


def write_tables(out_dir: Path, arms: dict[str, dict[str, Any]], config: CompareConfig) -> None:
    """Writes ``results.csv`` (one row per seed and arm) and ``curves.npz`` (per-epoch losses)."""
    rows, curves = [], {}
    for label, arm in arms.items():
        for i, seed in enumerate(arm["seeds"].tolist()):
            losses = arm["epoch_losses"][i]
            diverged_epoch = int(arm["diverged_epoch"][i])
            rows.append(
                [
                    seed,
                    label,
                    config.cell,
                    config.hidden,
                    repr(float(arm["train_mse"][i])),
                    repr(float(arm["test_mse"][i])),
                    repr(float(losses[-1])),
                    "true" if diverged_epoch else "false",
                    diverged_epoch,
                ]
            )
        curves[f"{label}/epoch_losses"] = arm["epoch_losses"]
        curves[f"{label}/seeds"] = arm["seeds"]
    storage.write_csv(Path(out_dir) / "results.csv", RESULTS_HEADER, rows)
    storage.write_npz(Path(out_dir) / "curves.npz", curves)


def read_results(path: Path, config: CompareConfig) -> dict[str, dict[str, np.ndarray]]:
    """``results.csv`` as arrays per arm, checked against the run's seeds and arms."""
    rows = storage.read_csv(path, RESULTS_HEADER)
    out = {}
    for label, _, seeds in config.arms():
        mine = [row for row in rows if row["model"] == label]
        try:
            table = {
                "seeds": np.array([int(row["seed"]) for row in mine], np.int64),
                "train_mse": np.array([float(row["train_mse"]) for row in mine]),
                "test_mse": np.array([float(row["test_mse"]) for row in mine]),
                "final_loss": np.array([float(row["final_loss"]) for row in mine]),
                "diverged_epoch": np.array([int(row["diverged_epoch"]) for row in mine]),
            }
        except ValueError as error:
            raise storage.ResultFileError(f"{path}: a value is not a number ({error})") from None
        if any((row["cell"], row["hidden"]) != (config.cell, str(config.hidden)) for row in mine):
            raise storage.ResultFileError(
                f"{path}: the rows of {label} name another cell or hidden size than the run's"
                f" {config.cell}, {config.hidden}"
            )
        if tuple(table["seeds"].tolist()) != seeds:
            raise storage.ResultFileError(
                f"{path}: the rows of {label} do not hold the run's {len(seeds)} seeds in order"
            )
        if any(row["diverged"] not in ("true", "false") for row in mine):
            raise storage.ResultFileError(f"{path}: diverged must be true or false")
        _check_values(path, label, table, [row["diverged"] == "true" for row in mine])
        out[label] = table
    if len(rows) != sum(len(t["seeds"]) for t in out.values()):
        raise storage.ResultFileError(f"{path}: holds rows of models that are not in the run")
    return out


def _check_values(path: Path, label: str, table: dict, diverged: list[bool]) -> None:
    """Refuses values no training gives: an MSE that is negative, or not finite but not diverged."""
    diverged = np.asarray(diverged, bool)
    if (
        not np.array_equal(diverged, table["diverged_epoch"] > 0)
        or (table["diverged_epoch"] < 0).any()
    ):
        raise storage.ResultFileError(f"{path}: diverged and diverged_epoch of {label} disagree")
    for name in ("train_mse", "test_mse", "final_loss"):
        values = table[name]
        bad = (values < 0) | (~np.isfinite(values) & ~diverged)
        if bad.any():
            seed = int(table["seeds"][np.argmax(bad)])
            raise storage.ResultFileError(
                f"{path}: {name} of {label} at seed {seed} is {values[np.argmax(bad)]!r}, which"
                " no training gives (negative, or not finite with diverged=false)"
            )


def read_curves(path: Path, config: CompareConfig) -> dict[str, np.ndarray]:
    """``curves.npz``: each arm's ``<float32>[n_seeds, epochs]`` losses, checked for shape."""
    labels = [label for label, _, _ in config.arms()]
    arrays = storage.read_npz(path, required=[f"{label}/epoch_losses" for label in labels])
    curves = {}
    for label, _, seeds in config.arms():
        losses = arrays[f"{label}/epoch_losses"]
        if losses.shape != (len(seeds), config.epochs):
            raise storage.ResultFileError(f"{path}: {label} losses have shape {losses.shape}")
        curves[label] = losses
    return curves


def load_results(out_dir: Path) -> tuple[CompareConfig, dict, dict, dict, dict]:
    """Every saved file of a finished run, checked against ``run.json`` and against each other.

    Returns:
      ``(config, record, tables, curves, arms)``: the run's configuration and ``run.json``
      record, ``results.csv`` and ``curves.npz`` by arm, and the saved arms.
    """
    config, record = load_run(out_dir)
    tables = read_results(out_dir / "results.csv", config)
    curves = read_curves(out_dir / "curves.npz", config)
    arms = {label: load_arm(out_dir, config, record, label, m, s) for label, m, s in config.arms()}
    for label, arm in arms.items():
        # The tables are derived from the arms; a table from another run must not pass.
        table_matches = all(
            np.array_equal(tables[label][name], arm[name].astype(np.float64), equal_nan=True)
            for name in ("train_mse", "test_mse")
        ) and np.array_equal(tables[label]["diverged_epoch"], arm["diverged_epoch"])
        if not table_matches:
            raise storage.ResultFileError(
                f"{out_dir / 'results.csv'}: the rows of {label} differ from arm_{label}.npz"
            )
        if not np.array_equal(curves[label], arm["epoch_losses"], equal_nan=True):
            raise storage.ResultFileError(
                f"{out_dir / 'curves.npz'}: the losses of {label} differ from arm_{label}.npz"
            )
    return config, record, tables, curves, arms


def stats_input(table: dict[str, np.ndarray]) -> np.ndarray:
    """Test MSEs with diverged seeds as NaN, so the statistics leave them out."""
    return np.where(table["diverged_epoch"] > 0, np.nan, table["test_mse"])
