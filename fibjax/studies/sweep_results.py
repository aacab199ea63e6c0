"""A sweep's results: shard folders merged into one sweep; a finished sweep read for its report.

:func:`merge` checks that shard folders (``--shard K/N``) belong to one sweep and writes the
whole sweep; :func:`load_all` loads every arm of a finished sweep, each checked;
:func:`point_mses` gives a grid point's paired test MSEs; :func:`describe` and :func:`code_text`
give what the report keeps of the sweep and of its code. Nothing here trains.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fibjax.models import BASELINE
from fibjax.results import provenance, storage
from fibjax.studies.sweep import (
    SWEEP_FILE,
    SWEEP_FORMAT,
    arm_path,
    check_out_dir,
    is_sweep,
    load_arm,
    load_saved,
    load_sweep,
    prepare_out_dir,
    run_codes,
)
from fibjax.studies.sweep_grid import Arm, SweepConfig, shard_arms

# ----------------------------------------------------------------------------- results


def point_mses(config: SweepConfig, arms: dict[str, dict[str, Any]], point: dict[str, Any]):
    """``(attention, vanilla)`` test MSEs of one grid point, ``<float64>[n_seeds]`` each,
    diverged seeds as NaN."""
    r = config.learning_rates.index(point["learning_rate"])
    key = (point["cell"], point["hidden"], point["window"], point["scaling"])

    def mse(model: str) -> np.ndarray:
        arm = arms[Arm(key[0], model, key[1], key[2], key[3]).name]
        diverged = arm["diverged_epoch"][r] > 0
        return np.where(diverged, np.nan, arm["test_mse"][r].astype(np.float64))

    return mse(point["model"]), mse(BASELINE)


def load_all(out_dir: Path) -> tuple[SweepConfig, dict[str, Any], dict[str, dict[str, Any]]]:
    """A finished sweep's config, record and every arm, each checked
    (:func:`fibjax.studies.sweep.load_arm`).

    Raises:
      fibjax.results.storage.ResultFileError: an arm is missing, damaged or disagrees with the
        sweep.
    """
    config, record = load_sweep(out_dir)
    if record["shard"] is not None:
        k, n = record["shard"]
        raise storage.ResultFileError(
            f"{out_dir}: holds shard {k}/{n} of a sweep; merge the shards with fibjax merge OUT"
            " DIR... for the report"
        )
    arms = {}
    for arm in config.arms():
        if not arm_path(out_dir, arm).exists():
            raise storage.ResultFileError(
                f"{arm_path(out_dir, arm)}: missing; finish the sweep with fibjax sweep --resume"
                f" {out_dir}"
            )
        arms[arm.name] = load_arm(out_dir, config, record, arm)
    return config, record, arms


# ------------------------------------------------------------------------------- merge


def merge(out_dir: Path, shard_dirs: Sequence[Path], environment: dict[str, Any]) -> None:
    """Checks that ``shard_dirs`` hold shards of one sweep and writes the whole sweep to
    ``out_dir`` (a new or empty folder); the report is then built from it. Shards that differ
    only in their analysis settings (``SweepConfig.ANALYSIS``) are one sweep: the merged
    folder takes the first folder's.

    Raises:
      fibjax.results.provenance.ProvenanceError: the folders belong to different sweeps (grid,
        seeds, epochs, code), an arm disagrees with its folder, or the same arm differs between
        two.
      fibjax.results.storage.ResultFileError: a folder or file is missing or damaged, or arms of
        the sweep are in none of the folders.
    """
    if not shard_dirs:
        raise storage.ResultFileError("give the shard folders to merge")
    for folder in shard_dirs:
        if not Path(folder).is_dir() or not is_sweep(folder):
            raise storage.ResultFileError(f"{folder}: is not a fibjax sweep folder")
    loaded = [(Path(d), *load_saved(d)) for d in shard_dirs]
    first_dir, config, record, _ = loaded[0]
    arms: dict[str, dict[str, Any]] = {}
    sources: dict[str, Path] = {}  # the first folder that holds each arm
    for folder, other, other_record, saved in loaded:
        _check_same_sweep(first_dir, config, record, folder, other, other_record)
        for name, arrays in saved.items():
            if name in arms and not _same_arrays(arms[name], arrays):
                raise provenance.ProvenanceError(
                    f"{folder}: arm_{name}.npz differs from the same arm in {sources[name]};"
                    " merge only the shards of one run of the sweep"
                )
            arms.setdefault(name, arrays)
            sources.setdefault(name, folder)
    _check_complete(config, arms, [r for _, _, r, _ in loaded])
    name = "the merged folder"
    check_out_dir(out_dir, name=name)
    storage.remove_stale_temporaries(Path(out_dir).parent)  # of merges killed half-way
    # Built aside and moved into place whole: a merge killed half-way leaves no folder that
    # looks like a sweep with arms missing.
    try:
        with storage.atomic_folder(out_dir) as staging:
            _write_merged(staging, config, record, environment, loaded)
    except OSError as error:
        raise ValueError(f"{name} {out_dir}: cannot be written ({error.strerror})") from None


def _write_merged(staging: Path, config, record, environment, loaded) -> None:
    """The merged sweep's record and every arm, written into ``staging``."""
    prepare_out_dir(staging, config, record["environment"], name="the merged folder")
    merged = staging / SWEEP_FILE
    sweep = storage.read_json(merged)
    sweep["code"] = record["code"]
    if "code_changes" in record:
        sweep["code_changes"] = record["code_changes"]
    # The environment stays the training's (the first folder's); the merge's is kept apart.
    sweep["merged_by"] = environment
    sweep["merged_from"] = [
        {
            "folder": str(folder),
            "shard": r["shard"] and list(r["shard"]),
            "environment": r["environment"],
        }
        for folder, _, r, _ in loaded
    ]
    storage.write_json(merged, sweep)
    for folder, _, _, saved in loaded:
        for arm in saved:
            target = staging / f"arm_{arm}.npz"
            if not target.exists():
                with storage.atomic_path(target) as tmp:
                    shutil.copyfile(Path(folder) / f"arm_{arm}.npz", tmp)


def _check_same_sweep(first_dir, config, record, folder, other, other_record) -> None:
    # Shards that differ only in how they are analysed (alpha, the heat map's axes) are one
    # sweep; the merged folder takes the first folder's analysis settings.
    difference = provenance.first_difference(_trained(config), _trained(other))
    if difference is not None:
        field, want, got = difference
        raise provenance.ProvenanceError(
            f"{folder}: is a shard of another sweep ({field} is {got!r}, but {want!r} in"
            f" {first_dir}); merge only the shards of one sweep"
        )
    if run_codes(other_record) != run_codes(record):
        field, want, got = provenance.first_difference(record["code"], other_record["code"]) or (
            "code_changes",
            None,
            None,
        )
        raise provenance.ProvenanceError(
            f"{folder}: trained under other code than {first_dir} (code.{field} is {got!r}, not"
            f" {want!r}); merge only shards trained under the same code"
        )


def _trained(config: SweepConfig) -> dict[str, Any]:
    """What changes a sweep's trained numbers: its configuration less its analysis fields."""
    return {**provenance.run_fields(config), "seeds": list(config.seeds)}


def _same_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    skip = {"train_s"}
    keys = set(a) - skip
    return keys == set(b) - skip and all(_same_array(a[k], b[k]) for k in keys)


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal shapes and values, NaN equal to NaN in numbers (an arm also holds its provenance
    as text, where NaN has no meaning and ``equal_nan`` raises)."""
    a, b = np.asarray(a), np.asarray(b)
    numbers = a.dtype.kind in "fc" and b.dtype.kind in "fc"
    return np.array_equal(a, b, equal_nan=numbers)


def _check_complete(config: SweepConfig, arms: dict, records: list[dict[str, Any]]) -> None:
    missing = [arm for arm in config.arms() if arm.name not in arms]
    if not missing:
        return
    n = next((r["shard"][1] for r in records if r["shard"] is not None), None)
    parts = sorted(
        {k for k in range(1, (n or 0) + 1) for arm in shard_arms(config, (k, n)) if arm in missing}
    )
    where = f"; run or finish shard(s) {', '.join(f'{k}/{n}' for k in parts)}" if parts else ""
    raise storage.ResultFileError(
        f"{len(missing)} of the sweep's {len(config.arms())} arms are in none of the folders"
        f" (first: {missing[0].name}){where}"
    )


def describe(config: SweepConfig, record: dict[str, Any], arms: dict[str, dict[str, Any]]):
    """The JSON-ready description of a sweep that its summary keeps: configuration, code,
    environment, the shards it was merged from, and where its training time went."""
    seconds = {name: float(arm["train_s"]) for name, arm in arms.items() if "train_s" in arm}
    return {
        "format": SWEEP_FORMAT,
        "config": config.to_dict(),
        "varying_axes": config.varying_axes(),
        "n_points": len(config.points()),
        "n_arms": len(arms),
        "code": run_codes(record),
        "environment": record["environment"],
        "merged_from": record.get("merged_from"),
        "train_s": seconds,
    }


def code_text(arms: dict[str, dict[str, Any]]) -> str:
    """One sentence on the code that trained the arms; says so when it changed mid-sweep.

    >>> code = {"fibjax": "0.1.0", "source_digest": "ab" * 32, "jax": "0.10", "flax": "0.12"}
    >>> record = {"format": provenance.FORMAT, "config": {}, "code": code}
    >>> arm = {"provenance": provenance.to_array(record)}
    >>> code_text({"a": arm, "b": arm})
    'Trained with fibjax 0.1.0 (source abababababab), JAX 0.10, Flax 0.12.'
    """
    codes = [provenance.from_array(arm["provenance"], name)["code"] for name, arm in arms.items()]
    distinct = [code for i, code in enumerate(codes) if code not in codes[:i]]
    if len(distinct) == 1:
        return f"Trained with {provenance.code_line(distinct[0])}."
    texts = "; ".join(map(provenance.code_line, distinct))
    return (
        "**The code changed while this sweep was interrupted** (resumed with"
        f" --allow-version-change): arms were trained with {texts}."
    )
