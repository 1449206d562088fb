"""The session of a one-shot command (``labnet calibrate``, ``labnet probe``): folder, rig, status.

Neither command can be resumed: a calibration's least-squares fit needs every pattern of
its code sweep measured under the same drift and noise, and a probe's bootstrap statistics
need every pattern of its seeded draw — half a run is not half the result. So a stopped or
failed one-shot session is recorded as such (``status.json`` with ``resumable: false``,
the rows measured so far kept) and the command says to run it again.

:func:`session_folder` makes the folder before any instrument is opened (a bad ``--out``
is a one-line :class:`ConfigError`, exit 2); :class:`OneShot` opens the rig, and at the end —
whatever ends it — puts the sources in the safe state (signals deferred), closes the rig and
writes ``status.json``: ``completed``, ``stopped`` (Ctrl-C, SIGTERM) or ``failed`` with a
one-line reason and whether the safe state was reached.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType

from labnet.bench.rig import Rig
from labnet.core.errors import ConfigError, StorageError
from labnet.experiments.signals import shielded
from labnet.session.folder import new_session_dir, write_status

log = logging.getLogger("labnet.app.oneshot")


def session_folder(out: str | Path | None, name: str, session_dir: Path | None = None) -> Path:
    """A new session folder under ``out`` (or ``session_dir`` itself); :class:`ConfigError`
    naming ``--out`` if it cannot be made (an existing file, no permission, a full disk)."""
    try:
        folder = Path(session_dir) if session_dir is not None else new_session_dir(out or "sessions", name)
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = session_dir if session_dir is not None else (out or "sessions")
        raise ConfigError(str(where), "--out", f"cannot create the session folder ({exc.strerror or exc})") from None
    return folder


class OneShot:
    """``with OneShot(rig, folder, "calibrate"):`` — the rig open inside, the end recorded.

    An exception leaving the block gets ``labnet_session`` (the folder), ``labnet_resumable``
    (False) and ``labnet_safe`` (whether the safe state was reached) for the CLI's message. When
    the rig fails to open, the folder (nothing in it but status.json) is removed instead and the
    exception says ``labnet_discarded``.
    """

    def __init__(self, rig: Rig, folder: Path, command: str) -> None:
        self.rig = rig
        self.folder = folder
        self.command = command
        self.status: dict[str, object] = {}

    def __enter__(self) -> OneShot:
        write_status(self.folder, "running", "", command=self.command, resumable=False)
        try:
            self.rig.open()
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            self._discard_unopened(exc)
            raise
        return self

    def _discard_unopened(self, exc: BaseException) -> None:
        """The rig did not open (an instrument not connected, Ctrl-C): nothing was measured, so
        the folder — only its status.json — is removed instead of left behind as an empty session."""
        try:
            names = {p.name for p in self.folder.iterdir()}
            if not names <= {"status.json", ".status.json.tmp"}:
                return
            for name in names:
                (self.folder / name).unlink()
            self.folder.rmdir()
        except OSError:
            return
        for key, value in (("labnet_session", None), ("labnet_discarded", str(self.folder))):
            try:
                setattr(exc, key, value)
            except AttributeError:
                pass

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with shielded():  # a second Ctrl-C must not cut the safe state short
            safe = True
            try:
                self.rig.safe_state()
            except Exception as err:  # noqa: BLE001 - recorded: the status says the bench may be unsafe
                safe = False
                log.error("safe state failed: %s", err)
            try:
                self.rig.close()
            except Exception as err:  # noqa: BLE001 - closing after the safe state; the first error matters
                log.error("closing the rig failed: %s", err)
            if exc is None:
                state, reason = "completed", ""
            elif isinstance(exc, KeyboardInterrupt):
                state, reason = "stopped", f"interrupted ({exc or 'Ctrl-C'})"
            else:
                state, reason = "failed", f"{type(exc).__name__}: {exc}"
            try:
                self.status = write_status(self.folder, state, reason, command=self.command, resumable=False,
                                           safe_state=safe)
            except StorageError as err:
                log.error("status not written: %s", err)
        if exc is not None:
            for key, value in (("labnet_session", str(self.folder)), ("labnet_resumable", False),
                               ("labnet_safe", safe), ("labnet_command", self.command)):
                try:
                    setattr(exc, key, value)
                except AttributeError:
                    pass


__all__ = ["OneShot", "session_folder"]
