"""Session I/O: the session folder, its append-only CSV, status, events and checkpoints.

One job per module: :mod:`~labnet.session.files` (names, atomic writes),
:mod:`~labnet.session.writer` (the CSV), :mod:`~labnet.session.events` (``events.jsonl``),
:mod:`~labnet.session.status` (``status.json``), :mod:`~labnet.session.reader` (reading a
session back), :mod:`~labnet.session.checkpoint` (checkpoints and the evaluation log);
:mod:`~labnet.session.folder` gathers them and states the durability rules.

The public reading API (``from labnet.session import read_session, read_header``) is
re-exported here.
"""

from labnet.session.reader import read_header, read_markers, read_session
from labnet.session.status import read_status

__all__ = ["read_header", "read_markers", "read_session", "read_status"]
