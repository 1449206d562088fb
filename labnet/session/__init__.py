"""Session I/O: the session folder, its append-only CSV, status, events and checkpoints.

The public reading API (``from labnet.session import read_session, read_header``) is
re-exported here.
"""

from labnet.session.folder import read_header, read_markers, read_session, read_status

__all__ = ["read_header", "read_markers", "read_session", "read_status"]
