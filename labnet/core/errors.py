"""Errors labnet raises, each a one-line message that names where the problem is."""

from __future__ import annotations


class LabnetError(Exception):
    """Base class of every error labnet raises on purpose."""


class ConfigError(LabnetError, ValueError):
    """A file, key or value a person wrote is wrong.

    The message reads ``<file>: <key>: <problem>`` on one line, so the CLI can print it as is
    and exit with code 2. ``file`` is ``"<code>"`` for objects built in Python.
    """

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = str(file)
        self.key = key
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.file}: {self.key}: {self.problem}")


class LimitError(LabnetError):
    """A requested voltage pattern or code would exceed a rated limit; nothing was applied."""


class StorageError(LabnetError, OSError):
    """A session file could not be written (a full disk, an I/O error); the message names the
    file and the system's reason on one line. What was written before it is intact."""


class InstrumentError(LabnetError):
    """An instrument misbehaved at run time (timeout, garbled reply, error queue entry)."""
