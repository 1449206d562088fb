"""A pyvisa backend onto the simulated benches: real pyvisa resources, emulated instruments.

``pyvisa.ResourceManager(simulator.visa.library())`` (or ``open_resource_manager()``) gives a
real :class:`pyvisa.ResourceManager`; ``rm.open_resource("TCPIP0::sim16::daq::INSTR")``
returns a real ``pyvisa`` message-based resource whose reads and writes reach instrument
``daq`` of the registered bench ``sim16`` (:mod:`simulator.bench`). Timeouts follow the
resource's ``timeout`` in *modelled* time and raise pyvisa's own ``VisaIOError``
(``VI_ERROR_TMO``), exactly as a real backend does.
"""

from __future__ import annotations

from typing import Any

import pyvisa
from pyvisa import constants, errors, highlevel, rname
from pyvisa.typing import VISARMSession, VISASession
from pyvisa.util import LibraryPath

from simulator.bench import benches, get_bench
from simulator.scpi_emu import ScpiEmulator, VisaTimeout

SC = constants.StatusCode
RA = constants.ResourceAttribute


class _Session:
    def __init__(self, name: str, inst: ScpiEmulator) -> None:
        self.name = name
        self.inst = inst
        self.attrs: dict[Any, Any] = {
            RA.timeout_value: 2000,
            RA.termchar: ord("\n"),
            RA.termchar_enabled: False,
            RA.resource_name: name,
            RA.send_end_enabled: True,
            RA.suppress_end_enabled: False,
        }
        self._pending = b""


class _IgnoreWarning:
    """``VisaLibraryBase.ignore_warning`` without the generator: add the codes on entry,
    remove them on a normal exit (as the base's context manager does)."""

    __slots__ = ("codes", "ignored")

    def __init__(self, ignored: set[Any], codes: tuple[Any, ...]) -> None:
        self.ignored = ignored
        self.codes = codes

    def __enter__(self) -> None:
        self.ignored.update(self.codes)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.ignored.difference_update(self.codes)


class SimVisaLibrary(highlevel.VisaLibraryBase):
    """pyvisa backend serving ``TCPIP0::<bench>::<device>::INSTR`` from :mod:`simulator.bench`."""

    @staticmethod
    def get_library_paths() -> tuple[LibraryPath, ...]:
        return (LibraryPath("labnet-sim"),)

    @staticmethod
    def get_debug_info() -> dict[str, str]:
        return {"backend": "labnet simulator"}

    def ignore_warning(self, session: Any, *warnings_constants: SC) -> _IgnoreWarning:  # type: ignore[override]
        """The base class's context manager (warnings ignored for a session while it is
        open) as a plain object: pyvisa enters one for every read."""
        return _IgnoreWarning(self._ignore_warning_in_session[session], warnings_constants)

    def _init(self) -> None:
        self.sessions: dict[int, Any] = {}
        self._next = 1000

    def _register(self, obj: Any) -> int:
        self._next += 1
        self.sessions[self._next] = obj
        return self._next

    def open_default_resource_manager(self) -> tuple[VISARMSession, SC]:
        return VISARMSession(self._register(self)), SC.success

    def list_resources(self, session: Any, query: str = "?*::INSTR") -> tuple[str, ...]:
        names = [f"TCPIP0::{b}::{d}::INSTR" for b in benches() for d in get_bench(b).instruments]
        found = rname.filter(names, query)
        if not found:
            raise errors.VisaIOError(SC.error_resource_not_found.value)
        return tuple(found)

    def open(self, session: Any, resource_name: str, access_mode: Any = constants.AccessModes.no_lock,
             open_timeout: Any = 0) -> tuple[VISASession, SC]:
        try:
            parsed = rname.parse_resource_name(resource_name)
        except rname.InvalidResourceName:
            raise errors.VisaIOError(SC.error_invalid_resource_name.value) from None
        host = getattr(parsed, "host_address", None)
        device = getattr(parsed, "lan_device_name", None)
        try:
            if not isinstance(host, str) or not isinstance(device, str):
                raise KeyError(resource_name)
            inst = get_bench(host).instruments[device]
        except KeyError:
            raise errors.VisaIOError(SC.error_resource_not_found.value) from None
        return VISASession(self._register(_Session(resource_name, inst))), SC.success

    def close(self, session: Any) -> SC:
        if self.sessions.pop(session, None) is None:
            return SC.error_invalid_object
        return SC.success

    def _sess(self, session: Any) -> _Session:
        s = self.sessions.get(session)
        if not isinstance(s, _Session):
            raise errors.VisaIOError(SC.error_invalid_object.value)
        return s

    def write(self, session: Any, data: bytes) -> tuple[int, SC]:
        s = self._sess(session)
        s.inst.write(bytes(data))
        return len(data), SC.success

    def read(self, session: Any, count: int) -> tuple[bytes, SC]:
        s = self._sess(session)
        if not s._pending:
            try:
                s._pending = s.inst.read(s.attrs[RA.timeout_value] / 1000.0)
            except VisaTimeout:
                raise errors.VisaIOError(constants.VI_ERROR_TMO) from None
        chunk, s._pending = s._pending[:count], s._pending[count:]
        if s._pending:
            return chunk, SC.success_max_count_read
        return chunk, SC.success_termination_character_read

    def get_attribute(self, session: Any, attribute: Any) -> tuple[Any, SC]:
        s = self.sessions.get(session)
        if isinstance(s, _Session):
            return s.attrs.get(attribute, 0), SC.success
        return 0, SC.success

    def set_attribute(self, session: Any, attribute: Any, attribute_state: Any) -> SC:
        s = self.sessions.get(session)
        if isinstance(s, _Session):
            s.attrs[attribute] = attribute_state
        return SC.success

    def clear(self, session: Any) -> SC:
        s = self._sess(session)
        s._pending = b""
        s.inst._out.clear()
        return SC.success

    def flush(self, session: Any, mask: Any) -> SC:
        return SC.success

    def disable_event(self, session: Any, event_type: Any, mechanism: Any) -> SC:
        return SC.success

    def discard_events(self, session: Any, event_type: Any, mechanism: Any) -> SC:
        return SC.success


def library() -> SimVisaLibrary:
    """The (one) simulator backend instance."""
    return SimVisaLibrary("labnet-sim")


def open_resource_manager() -> pyvisa.ResourceManager:
    """A real pyvisa ResourceManager on the simulator backend."""
    return pyvisa.ResourceManager(library())
