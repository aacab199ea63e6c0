"""Result files: written atomically, read back with one clear error when they are not ours.

Every file is written to a temporary name in its folder and renamed into place, so a killed run
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


class ResultFileError(ValueError):
    """A result file is missing, truncated, edited by hand or not written by fibjax."""


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; moves it onto ``path`` if the block succeeds.

    The temporary file is created with mode ``0o666`` less the umask, as ``open`` would make
    ``path`` itself, and is flushed to disk before the move.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: Path, obj: Any) -> None:
    """Writes ``obj`` as indented JSON, atomically; NaN is refused (use ``None``)."""
    write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Saves arrays to an ``.npz`` file, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Writes a CSV file atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def read_json(path: Path, required: Sequence[str] = ()) -> dict[str, Any]:
    """Reads a JSON object that must hold the ``required`` keys."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultFileError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultFileError(f"{path}: not readable JSON ({error})") from None
    if not isinstance(obj, dict):
        raise ResultFileError(f"{path}: expected a JSON object, found {type(obj).__name__}")
    missing = [key for key in required if key not in obj]
    if missing:
        raise ResultFileError(f"{path}: not a fibjax file (missing {', '.join(missing)})")
    return obj


def read_npz(path: Path, required: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Reads every array of an ``.npz`` file that must hold the ``required`` names."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise ResultFileError(f"{path}: missing") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ResultFileError(f"{path}: not a readable .npz file ({error})") from None
    missing = [name for name in required if name not in arrays]
    if missing:
        raise ResultFileError(f"{path}: not a fibjax file (missing {', '.join(missing)})")
    return arrays


def read_csv(path: Path, header: Sequence[str]) -> list[dict[str, str]]:
    """Reads a CSV file whose first row must be exactly ``header``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultFileError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ResultFileError(f"{path}: not readable ({error})") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or rows[0] != list(header):
        raise ResultFileError(f"{path}: not a fibjax results file (expected columns {header})")
    body = [row for row in rows[1:] if row]
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ResultFileError(f"{path}: line {number} has {len(row)} fields, not {len(header)}")
    return [dict(zip(header, row, strict=True)) for row in body]
