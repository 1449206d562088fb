"""The one line that ends a stopped or failed ``labnet`` command: what was left (the safe state,
the session) and how to go on (``labnet resume``, quoted for the shell, or run again)."""

from __future__ import annotations

import shlex

from labnet.core.errors import LimitError
from labnet.experiments.signals import signals_received

#: Commands that open instruments (or the simulator's): a stop during them ends in the safe state.
OPENS_INSTRUMENTS = ("run", "resume", "calibrate", "probe")


def resume_hint(session: object) -> str:
    """The shell command that continues ``session``, quoted for a POSIX shell (spaces, quotes)."""
    return f"labnet resume {shlex.quote(str(session))}"


def stop_message(command: str | None, exc: BaseException) -> str:
    """The one line printed when a signal (Ctrl-C, SIGTERM, SIGHUP) stops ``command``.

    Only a command that had instruments open mentions the safe state, and only a resumable
    session suggests ``labnet resume`` (quoted for the shell); see :func:`_after`."""
    why = str(exc) or "Ctrl-C"
    if getattr(exc, "labnet_session", None) is not None:
        after = _after(exc)
        return f"labnet: stopped ({why})" + (f"; {after}" if after else "")
    if getattr(exc, "labnet_discarded", None):
        return (f"labnet: stopped ({why}) before any state was recorded; sources are in the safe state; "
                "the empty session folder was removed")
    if command in OPENS_INSTRUMENTS:
        return f"labnet: stopped ({why}) before any instrument was opened"
    return f"labnet: stopped ({why}); no instrument was open"


def _after(exc: BaseException) -> str:
    """What the stop or failure left: the safe state (when known; a stop always ends in it or
    says not), and how to go on (resume, or run again)."""
    session = getattr(exc, "labnet_session", None)
    safe = getattr(exc, "labnet_safe", True if isinstance(exc, KeyboardInterrupt) else None)
    parts = [] if safe is None else [
        "sources are in the safe state" if safe else "THE SAFE STATE WAS NOT CONFIRMED: check the sources"]
    if session is not None:
        if isinstance(exc, LimitError):  # training asked for a state the limits refuse: a resume asks again
            parts.append("a resume would ask for the same state: lower the task's voltages or eta, narrow the code "
                         "range or use a release that does not load the nodes, and run again (the rows so far are "
                         f"kept in {session})")
        elif getattr(exc, "labnet_resumable", True):
            parts.append(f"continue with `{resume_hint(session)}`")
        else:
            command = getattr(exc, "labnet_command", "the command")
            parts.append(f"`labnet {command}` cannot be resumed: run it again (the rows measured so far are kept "
                         f"in {session})")
    return "; ".join(parts)


def interrupted_import(exc: ImportError) -> bool:
    """Whether ``exc`` is a stop signal in disguise: a ``KeyboardInterrupt`` raised while a C
    extension imported a module (numpy's ``PyCapsule_Import`` of ``datetime``, say) comes out as an
    ``ImportError``. True when the chain holds a ``KeyboardInterrupt`` or a stop signal was received."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return signals_received() > 0
