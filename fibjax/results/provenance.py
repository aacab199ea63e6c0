"""What made a saved result: its whole configuration, fibjax's source and the libraries' versions.

Every saved arm carries a provenance record, a JSON object of two parts:

- ``config``: the training configuration of each model (every field of its dataclass, so a field
  added later is recorded and checked with no change here), the data configuration and the seeds;
- ``code``: the fibjax version with a SHA-256 of its source, and the versions of JAX, jaxlib,
  Flax and Optax.

Results are combined only when their ``config`` parts are equal; :func:`first_difference` names
the first field where two records differ, so a refusal can say which file and field disagree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fibjax.results import storage
from fibjax.results.storage import ResultFileError

FORMAT = "fibjax-provenance/1"
VERSIONED = ("fibjax", "jax", "jaxlib", "flax", "optax")
# The package whose source the digest covers: fibjax itself, every sub-package included.
PACKAGE_DIR = Path(__file__).resolve().parents[1]


class ProvenanceError(ResultFileError):
    """Saved results disagree with each other or with their run's configuration."""


def code_record() -> dict[str, str]:
    """The code that trains now: the fibjax source digest and the versions of its libraries.

    >>> sorted(code_record())
    ['fibjax', 'flax', 'jax', 'jaxlib', 'optax', 'source_digest']
    """
    return {**versions(VERSIONED), "source_digest": source_digest()}


def source_digest() -> str:
    """SHA-256 of every module of the fibjax package and its sub-packages, in path order.

    Each module counts under its path inside the package (``models/cells.py``), so moving code
    between modules changes the digest too.
    """
    digest = hashlib.sha256()
    paths = sorted(PACKAGE_DIR.rglob("*.py"), key=lambda p: p.relative_to(PACKAGE_DIR).as_posix())
    for path in paths:
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def versions(names: Sequence[str] = VERSIONED) -> dict[str, str]:
    """The installed version of each package in ``names`` (``"absent"`` when not installed).

    >>> import jax
    >>> versions(["jax"]) == {"jax": jax.__version__}
    True
    """
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def config_record(train: Any, data: Any, seeds: Sequence[int]) -> dict[str, Any]:
    """The configuration part of a record: every field of the two dataclasses, and the seeds.

    >>> from fibjax.data import DataConfig
    >>> from fibjax.training.config import TrainConfig
    >>> record = config_record(TrainConfig("vanilla"), DataConfig(), [0, 1])
    >>> record["train"]["hidden"], record["data"]["window"], record["seeds"]
    (2, 20, [0, 1])
    """
    return {
        "train": dataclasses.asdict(train),
        "data": dataclasses.asdict(data),
        "seeds": [int(s) for s in seeds],
    }


def build(
    train: Any, data: Any, seeds: Sequence[int], code: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The full provenance record of results trained now under ``train``, ``data`` and ``seeds``.

    ``code`` is the :func:`code_record` of the process that trained them, read now when ``None``:
    a run that saves many results reads it once (the modules it runs were loaded when it began).
    """
    code = code_record() if code is None else dict(code)
    return {"format": FORMAT, "config": config_record(train, data, seeds), "code": code}


def first_difference(expected: Any, found: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first field (in key order) where two JSON-like values differ, or ``None``.

    Returns:
      ``(path, expected_value, found_value)``; a missing field is ``"<absent>"``.

    >>> first_difference({"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 3]})
    ('b[1]', 2, 3)
    >>> first_difference({"a": 1}, {"a": 1}) is None
    True
    """
    if isinstance(expected, Mapping) and isinstance(found, Mapping):
        for key in sorted(set(expected) | set(found), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in expected or key not in found:
                return where, expected.get(key, "<absent>"), found.get(key, "<absent>")
            diff = first_difference(expected[key], found[key], where)
            if diff is not None:
                return diff
        return None
    if isinstance(expected, (list, tuple)) and isinstance(found, (list, tuple)):
        if len(expected) != len(found):
            return f"{path} (length)", len(expected), len(found)
        for i, (a, b) in enumerate(zip(expected, found, strict=True)):
            diff = first_difference(a, b, f"{path}[{i}]")
            if diff is not None:
                return diff
        return None
    # JSON does not tell 1 from 1.0 apart reliably; a bool is not a number here.
    same_type = isinstance(expected, bool) == isinstance(found, bool)
    return None if same_type and expected == found else (path, expected, found)


def check_same(expected: Any, found: Any, expected_in: str, found_in: str) -> None:
    """Raises :class:`ProvenanceError` naming the first field where ``found`` differs.

    >>> check_same({"hidden": 2}, {"hidden": 4}, "run.json", "arm_vanilla.npz")
    Traceback (most recent call last):
    ...
    fibjax.results.provenance.ProvenanceError: arm_vanilla.npz: hidden is 4, but 2 in run.json
    """
    diff = first_difference(expected, found)
    if diff is not None:
        field, want, got = diff
        raise ProvenanceError(
            f"{found_in}: {field} is {_short(got)}, but {_short(want)} in {expected_in}"
        )


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def to_array(record: Mapping[str, Any]) -> np.ndarray:
    """A record as a 0-d string array, to save in an ``.npz`` file beside the results."""
    return np.asarray(json.dumps(record, sort_keys=True))


def from_array(array: np.ndarray, where: str) -> dict[str, Any]:
    """The record saved by :func:`to_array`; :class:`ProvenanceError` when it is not one."""
    try:
        record = json.loads(str(array.item()))
    except (ValueError, TypeError) as error:
        raise ProvenanceError(f"{where}: provenance is not readable ({error})") from None
    valid = (
        isinstance(record, dict)
        and record.get("format") == FORMAT
        and isinstance(record.get("config"), dict)
        and isinstance(record.get("code"), dict)
    )
    if not valid:
        raise ProvenanceError(f"{where}: provenance is not a {FORMAT} record")
    return record


def admit_code(
    codes: Sequence[Mapping[str, Any]], where: str, allow: bool, what: str
) -> dict | None:
    """The code running now, when a resumed run may add it to the ``codes`` it was trained under.

    Args:
      codes: the run's code records (the first when it began, then each allowed change).
      where: the run's record file, for the message.
      allow: whether other code may continue the run (``--allow-version-change``).
      what: "run" or "sweep", for the message.

    Returns:
      ``None`` when the code now is among ``codes``; else the code now, to record as a change.

    Raises:
      ProvenanceError: the code differs and ``allow`` is false; names the first field.
    """
    now = code_record()
    if now in codes:
        return None
    field, then, _ = first_difference(codes[0], now)
    if not allow:
        raise ProvenanceError(
            f"{where}: the {what} began under other code (code.{field} was {then!r}, now"
            f" {now[field]!r}); resume with --allow-version-change to mix them (the report"
            f" says so), or start a new {what}"
        )
    return now


def code_line(code: Mapping[str, Any]) -> str:
    """A code record in words, for reports.

    >>> code_line({"fibjax": "0.1.0", "source_digest": "ab" * 32, "jax": "0.10", "flax": "0.12"})
    'fibjax 0.1.0 (source abababababab), JAX 0.10, Flax 0.12'
    """
    return (
        f"fibjax {code.get('fibjax', '?')} (source {str(code.get('source_digest', '?'))[:12]}),"
        f" JAX {code.get('jax', '?')}, Flax {code.get('flax', '?')}"
    )


def check_saved(
    array: np.ndarray,
    expected: Mapping[str, Any],
    codes: Sequence[Mapping[str, Any]],
    record_file: str,
    path: str,
    *,
    analysis: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Checks a saved result's provenance against its run's record; returns the provenance.

    Args:
      array: the result's provenance (:func:`to_array`).
      expected: the configuration part it must carry.
      codes: the code records the run allows (the first, then each allowed change).
      record_file: the run's record file, for the messages.
      path: the result's file, for the messages.
      analysis: by section of the configuration (``run``, ``sweep``), the analysis fields that
        results saved by earlier versions carry there and are not compared: they do not change
        the trained numbers.

    Raises:
      ProvenanceError: another configuration (names the first field that differs), or code the
        run did not allow.
    """
    found = from_array(array, path)
    config = found["config"]
    for section, names in (analysis or {}).items():
        if isinstance(config, dict) and isinstance(config.get(section), dict):
            kept = {k: v for k, v in config[section].items() if k not in names}
            config = {**config, section: kept}
    check_same(expected, config, record_file, path)
    if found["code"] not in codes:
        field, want, got = first_difference(codes[0], found["code"])
        raise ProvenanceError(
            f"{path}: trained under other code (code.{field} is {got!r}, but {want!r} in"
            f" {record_file}); results of different code are combined only after a resume with"
            " --allow-version-change"
        )
    return found


def run_fields(config: Any) -> dict[str, Any]:
    """A comparison's or sweep's configuration less its seeds and its analysis fields (the
    config's ``ANALYSIS``): what an arm's provenance holds of the whole run."""
    skipped = {"seeds", *config.ANALYSIS}
    return {k: v for k, v in config.to_dict().items() if k not in skipped}


def set_analysis(out_dir: Path, record_file: str, load, from_dict, **fields: Any):
    """Rewrites a finished run's record with other analysis fields; returns the new config.

    Args:
      out_dir: the run's folder.
      record_file: its record's name (``run.json``, ``sweep.json``).
      load: ``load(out_dir) -> (config, record)``.
      from_dict: rebuilds (and validates) a config from a record's ``config``.
      **fields: analysis fields (the config's ``ANALYSIS``) and their new values; ``None``:
        unchanged.

    Raises:
      ValueError: a field that is not an analysis field, or a value the config refuses.
    """
    config, record = load(out_dir)
    changes = {k: v for k, v in fields.items() if v is not None}
    unknown = sorted(set(changes) - set(config.ANALYSIS))
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not an analysis setting of this run")
    if not changes:
        return config
    new = from_dict({**config.to_dict(), **changes})
    storage.write_json(Path(out_dir) / record_file, {**record, "config": new.to_dict()})
    return new
