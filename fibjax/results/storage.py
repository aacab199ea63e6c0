"""Result files: written atomically, read back with one clear error when they are not ours.

Every file is written to a temporary name in its folder and renamed into place, so a killed run
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import re
import secrets
import shutil
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


class ResultFileError(ValueError):
    """A result file is missing, truncated, edited by hand or not written by fibjax."""


# Temporary files are named ``.<final name>.<pid>.<random>.tmp`` beside their final name.
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$")


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process, or a number no process has: leave it alone
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Removes the temporary files that killed fibjax processes left in ``folder``.

    Only files (or staging folders) named as :func:`atomic_path` names them, of a process that
    no longer runs, are removed: a run writing into a shared folder keeps its own. Returns what
    was removed; a folder that cannot be listed or written is left as it is.
    """
    removed = []
    with contextlib.suppress(OSError):
        for path in Path(folder).iterdir():
            match = _TEMPORARY.match(path.name)
            if match is None or _process_alive(int(match.group(1))):
                continue
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed.append(path)
    return removed


def check_writable(folder: Path) -> None:
    """Raises ``OSError`` unless a file can be created (and removed) in ``folder``."""
    probe = _temporary_name(Path(folder) / "write-check")
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    probe.unlink()


class Staging:
    """Files written under temporary names in one folder, then moved into place together.

    A report writes every output through :meth:`path` and :meth:`commit` moves them in only
    once all are written: a failure half-way leaves the previous outputs untouched, never a
    new file beside a stale one. Used as a context manager, it commits on success and removes
    its temporary files on failure.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.staged: dict[str, Path] = {}
        self.stale: set[str] = set()

    def path(self, name: str) -> Path:
        """A temporary path to write the file ``name`` to; moved onto ``folder/name`` later."""
        if name not in self.staged:
            self.staged[name] = _temporary_name(self.folder / name)
        return self.staged[name]

    def remove(self, name: str) -> None:
        """Removes ``folder/name`` on commit (an output the new report no longer has)."""
        self.stale.add(name)

    def commit(self) -> None:
        for name in self.staged:  # refused before anything moves, not half-way
            if (self.folder / name).is_dir():
                raise IsADirectoryError(
                    errno.EISDIR, "a folder is in the way", str(self.folder / name)
                )
        for tmp in self.staged.values():
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for name, tmp in self.staged.items():
            os.replace(tmp, self.folder / name)
        for name in self.stale - set(self.staged):
            with contextlib.suppress(FileNotFoundError):
                (self.folder / name).unlink()

    def discard(self) -> None:
        for tmp in self.staged.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            try:
                self.commit()
            finally:
                self.discard()
        else:
            self.discard()


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; moves it onto ``path`` if the block succeeds.

    The temporary file is created with mode ``0o666`` less the umask, as ``open`` would make
    ``path`` itself, and is flushed to disk before the move.
    """
    path = Path(path)
    tmp = _temporary_name(path)
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


@contextlib.contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Yields a new temporary folder beside ``path``; moves it onto ``path`` if the block succeeds.

    The folder appears whole or not at all: a failure removes the temporary folder, and one left
    by a killed process is removed by :func:`remove_stale_temporaries` of the parent folder.
    ``path`` may exist as an empty folder, which the move replaces.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    tmp.mkdir()
    try:
        yield tmp
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        os.rename(tmp, path)  # refuses a path that is in the way
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)


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
