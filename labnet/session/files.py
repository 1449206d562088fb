"""Session folder files: names, fresh folders, atomic replacement, fsync, JSON of numpy values."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from labnet.core.errors import StorageError

CSV_NAME = "session.csv"
STATUS_NAME = "status.json"
EVENTS_NAME = "events.jsonl"


def versions() -> dict[str, str]:
    """Versions of Python, labnet and the libraries whose behaviour shapes the numbers."""
    out = {"python": platform.python_version()}
    for pkg in ("labnet", "numpy", "scipy", "pandas", "pyvisa", "pyserial"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def new_session_dir(base: str | Path, name: str) -> Path:
    """A fresh folder ``base/<YYYYmmdd-HHMMSS>-<name>`` (suffixed if it already exists)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    root = Path(base)
    root.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        d = root / (f"{stamp}-{name}" if n == 1 else f"{stamp}-{name}-{n}")
        try:
            d.mkdir()
            return d
        except FileExistsError:
            n += 1


@contextmanager
def discard_if_empty(folder: str | Path) -> Iterator[Path]:
    """Around opening a session's instruments: when the block raises (an instrument failed to
    open, Ctrl-C) and the new session folder is still empty, remove it, so a failed start leaves no
    empty session folder behind. A folder with anything in it is kept."""
    f = Path(folder)
    try:
        yield f
    except BaseException:
        try:
            f.rmdir()  # only succeeds on an empty folder
        except OSError:
            pass
        raise


def fsync_dir(folder: str | Path) -> None:
    """fsync a directory so a file created or renamed in it survives a machine crash."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically: temp file, fsync, ``os.replace``, fsync dir.

    A reader (or a crash at any moment) sees either the old or the new file, never a mix.
    A failed write (a full disk: ENOSPC) leaves the old file as it was and no temp file.
    """
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        write_temp(tmp, text.encode("utf-8"))
        try:
            os.replace(tmp, p)
        except BaseException:
            remove_quietly(tmp)
            raise
    except OSError as exc:
        raise storage_error(p, exc) from exc
    fsync_dir(p.parent)


def storage_error(path: Path, exc: OSError) -> StorageError:
    """The one-line :class:`StorageError` for a failed write of ``path``."""
    if isinstance(exc, StorageError):
        return exc
    return StorageError(f"{path}: cannot write ({exc.strerror or exc})")


def write_temp(tmp: Path, data: bytes) -> None:
    """Write and fsync ``data`` as the new file ``tmp``; on any failure ``tmp`` is removed."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        remove_quietly(tmp)
        raise


def remove_quietly(path: Path) -> None:
    """Remove ``path`` if it is there (cleanup after a failed write: the first error matters)."""
    try:
        os.unlink(path)
    except OSError:
        pass


def atomic_write_json(path: str | Path, data: Any) -> None:
    """:func:`atomic_write_text` of ``data`` as indented JSON."""
    atomic_write_text(path, json.dumps(data, default=json_default, indent=1, sort_keys=True) + "\n")


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def copy_into(folder: Path, src: Path, name: str) -> None:
    shutil.copyfile(src, folder / name)


def header_json(v: Any) -> str:
    """The JSON of one ``# key: JSON`` header line (numpy values and paths as plain JSON)."""
    return json.dumps(v, default=json_default, sort_keys=True)


def json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    return str(o)
