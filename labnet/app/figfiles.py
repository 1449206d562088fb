"""Figure files written atomically: a stopped ``labnet report`` leaves no truncated PNG.

A figure is rendered into memory, written to a temporary file next to its destination
(``.NAME.XXXX.tmp``), fsynced and moved into place with :func:`os.replace`. A signal (SIGTERM,
Ctrl-C) or an error at any moment leaves either the previous file or the new one — never a
partial PNG — and the temporary file is removed.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

from labnet.session.files import atomic_write_text, fsync_dir, write_all


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` (temp file in the same folder, fsync, ``os.replace``); on any
    exception, KeyboardInterrupt included, the temp file is removed and ``path`` is untouched."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(p.parent)


def save_figure(fig: Any, path: str | Path, *, dpi: int = 110) -> None:
    """Render the matplotlib ``fig`` as PNG (``dpi`` dots per inch) and write it atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    write_bytes_atomic(path, buf.getvalue())


def write_page(path: str | Path, text: str) -> None:
    """Write a report page (Markdown) atomically."""
    atomic_write_text(path, text)


__all__ = ["save_figure", "write_bytes_atomic", "write_page"]
