"""A small SCPI base for instruments on pyvisa-resource-like objects.

An instrument driver subclasses :class:`ScpiInstrument` and declares its commands as class
attributes (PyMeasure style)::

    class Supply(ScpiInstrument):
        set_voltage = Command("VOLT {voltage_v:.6g},(@{channel})", "Set a channel's level (V).",
                              voltage_v=Range(0, 6), channel=Choice("1", "2", "3"))
        measure_current = Query("MEAS:CURR? (@{channel})", float, "Current (A).", channel=Choice("1", "2", "3"))

Arguments are validated *before* anything is written (a bad value raises ``ValueError``
with the command and argument named, and no byte is sent). The base handles termination
(``\\n``), timeouts (turned into :class:`~labnet.core.errors.InstrumentError` naming the
instrument and the command), ``*IDN?``, ``*RST``/``*CLS`` and draining ``SYST:ERR?``.

Retries
-------
Operations that are safe to repeat are retried a bounded number of times (``retries``) with
exponential backoff (``backoff_s``, doubling; slept through ``sleep``, which a rig sets to its
clock's — modelled time on the simulator, real time on a bench), then give up with an
:class:`~labnet.core.errors.InstrumentError`:

* **queries** (declared :class:`Query` objects, ``*IDN?``, the meter's ``READ?``): after a
  timeout or a reply that does not parse, the reply stream is re-synchronised — device
  clear (a late reply cannot be taken for the next one), then ``SYST:ERR?`` drained (every
  reply must be an error entry) — and the query is sent again;
* **verified writes** (:meth:`ScpiInstrument.write_verified`: setpoints, configuration):
  the message is sent with ``;:SYST:ERR?`` appended, so the error queue is checked in the
  same exchange; an error in the queue (drained and logged), a timeout or a garbled reply
  make the whole message be sent again (it must be idempotent) until the queue is clean.

Not retried: a *command error* (-100..-199) found in the queue — the instrument could not parse
the message and discarded the rest of it (IEEE 488.2), so the appended ``SYST:ERR?`` never ran
and the reply timed out; sending it again cannot help — and a model's :attr:`fatal_errors` (the
meter's -214 trigger deadlock). Both stop at once with an InstrumentError naming the error.

Every retry, re-synchronisation and recovery is logged (``logging.getLogger("drivers.scpi")``,
tagged with the event kind) and handed as a dict to ``on_event``, which a session connects
to its ``events.jsonl``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from drivers.events import EventCallback, emit_event
from drivers.runstats import StatsState
from drivers.scpi_params import Range
from drivers.scpi_text import ERR_QUERY, error_entry, split_reply
from labnet.core.errors import InstrumentError

log = logging.getLogger("drivers.scpi")
T = TypeVar("T")


class Transient(InstrumentError):
    """A failure that repeating the operation can fix (timeout, garbled reply, error queue entry).

    ``resync`` says whether the reply stream must be re-synchronised before the next attempt
    (not after an error entry: the queue was drained and the stream is in step).
    """

    def __init__(self, message: str, *, resync: bool = True) -> None:
        super().__init__(message)
        self.resync = resync


class ScpiInstrument(StatsState):
    """Base of SCPI drivers.

    Parameters
    ----------
    resource : pyvisa-resource-like
        Anything with ``write``, ``read``, ``query``, ``close`` and the attributes
        ``timeout`` (ms), ``read_termination``, ``write_termination``; ``clear`` (device
        clear) where the resource has it.
    label : str
        How errors name this instrument (e.g. ``"meter (DAQ970A)"``).
    timeout_s : float
        Longest wait for a reply (s); ``READ?`` of a long scan may need more.
    retries : int
        Repetitions of a retry-safe operation after its first attempt failed. 0 (the default
        of a driver built by hand): one attempt, as told; a rig built from a rig file passes
        the file's ``retries`` (default :data:`labnet.config.rigfile.SCPI_RETRIES`, 3).
    backoff_s : float
        Wait before the first retry (s); doubles with every further retry.
    sleep : callable
        ``sleep(seconds)`` for the backoff; a rig passes its clock's (the simulator's is modelled).
    on_event : callable, optional
        Called with a dict for every retry, re-synchronisation, recovery and give-up.
    """

    #: Substrings of the *IDN? model field this driver accepts (empty: any).
    models: tuple[str, ...] = ()
    max_errors = 32
    #: Error codes that repeating the operation cannot clear, with what they mean (per model).
    fatal_errors: dict[int, str] = {}

    def __init__(self, resource: Any, label: str = "", timeout_s: float = 5.0, *, retries: int = 0,
                 backoff_s: float = 0.05, sleep: Callable[[float], None] = time.sleep,
                 on_event: EventCallback | None = None) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries={retries!r}: expected a whole number >= 0")
        Range(0.0, 60.0)("backoff_s", backoff_s)
        self.resource = resource
        self.label = label or type(self).__name__
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = float(backoff_s)
        self.sleep = sleep
        self.on_event = on_event
        self.idn_info: dict[str, str] = {}
        self.stats = {"retries": 0, "resyncs": 0, "recoveries": 0, "queue_errors": 0}
        resource.read_termination = "\n"
        resource.write_termination = "\n"
        resource.timeout = timeout_s * 1000.0

    # ------------------------------------------------------------------ run state
    #: :class:`labnet.core.state.Stateful`: the run's statistics (retries, re-syncs,
    #: recoveries, queue errors). Settings are sent again when a resumed run opens the rig.
    def state_name(self) -> str:
        return self.label

    # ------------------------------------------------------------------ events
    def _event(self, kind: str, **detail: Any) -> None:
        emit_event(log, self.on_event, self.label, kind, detail)

    # ------------------------------------------------------------------ transport
    def _wrap(self, exc: Exception, what: str) -> InstrumentError:
        text = str(exc)
        if "TMO" in text or "imeout" in text:
            return Transient(f"{self.label}: no reply to {what!r} within {self.timeout_s:g} s (timeout)")
        return InstrumentError(f"{self.label}: {what!r} failed: {text}")

    def write(self, message: str) -> None:
        """Send one message (termination added by the resource)."""
        try:
            self.resource.write(message)
        except Exception as exc:  # noqa: BLE001 - pyvisa raises VisaIOError, others OSError
            raise self._wrap(exc, message) from exc

    def _query_once(self, message: str) -> str:
        """Send a query, return its reply without the termination; a timeout raises
        :class:`Transient` (nothing else is done about it here)."""
        try:
            reply = self.resource.query(message)
        except Exception as exc:  # noqa: BLE001
            raise self._wrap(exc, message) from exc
        if not isinstance(reply, str):
            raise Transient(f"{self.label}: reply to {message!r} is not text: {reply!r}")
        return reply.strip()

    def query(self, message: str) -> str:
        """Send a query once and return its reply; after a timeout the device is cleared (a late
        reply cannot answer the next query) and :class:`~labnet.core.errors.InstrumentError` raised."""
        try:
            return self._query_once(message)
        except Transient as exc:
            if exc.resync:
                self._device_clear()
            raise

    def _device_clear(self) -> None:
        """Device clear, so a late reply cannot answer the next query."""
        clear = getattr(self.resource, "clear", None)
        if clear is None:
            return
        try:
            clear()
        except Exception:  # noqa: BLE001, S110 - best effort; the timeout is the error that matters
            pass

    # ------------------------------------------------------------------ retries
    def _retrying(self, what: str, attempt: Callable[[], T], *, drain_on_resync: bool = True,
                  failed: Transient | None = None) -> T:
        """Run ``attempt`` until it returns, at most ``retries + 1`` times.

        ``attempt`` raises :class:`Transient` for a failure a repetition can fix; anything else
        propagates at once. Before each repetition: backoff (``backoff_s`` doubling, through
        ``sleep``) and, if the failure asks for it, re-synchronisation (device clear, then
        ``SYST:ERR?`` drained unless ``drain_on_resync`` is False). Exhausted: InstrumentError.
        ``failed``: the first attempt was already made (by the caller) and failed so.
        """
        last: Transient | None = failed
        for n in range(0 if failed is None else 1, self.retries + 1):
            if n:
                wait = self.backoff_s * 2 ** (n - 1)
                self.stats["retries"] += 1
                self._event("retry", command=what, attempt=n, reason=str(last), backoff_s=wait)
                self.sleep(wait)
                if last is not None and last.resync:
                    try:
                        self._resync(what, drain=drain_on_resync)
                    except Transient as exc:
                        last = exc
                        continue
            try:
                out = attempt()
            except Transient as exc:
                last = exc
                continue
            if n:
                self.stats["recoveries"] += 1
                self._event("recovered", command=what, attempts=n + 1)
            return out
        if last is not None and last.resync:
            self._device_clear()  # a late reply must not answer whatever is sent next
        self._event("gave_up", command=what, attempts=self.retries + 1, reason=str(last))
        raise InstrumentError(f"{self.label}: {what!r} failed after {self.retries + 1} attempt"
                              f"{'s' if self.retries else ''}: {last}") from last

    def _resync(self, what: str, *, drain: bool = True) -> None:
        """Re-synchronise the reply stream: device clear, then drain the error queue (each
        reply must be an error entry, so a reply still in flight is caught). The entries found
        (e.g. ``-410``/``-420`` left by the interrupted query) are logged, not raised — except
        a *command error* (-100..-199): the instrument could not parse ``what`` and discarded
        the rest of the message (IEEE 488.2), which is why no reply came; sending it again
        cannot help, so InstrumentError names the error at once."""
        self.stats["resyncs"] += 1
        self._device_clear()
        found = self._drain() if drain else []
        self._event("resync", command=what, cleared_errors=[f"{c},\"{m}\"" for c, m in found])
        self._refuse_command_errors(what, found)

    def _refuse_command_errors(self, what: str, errs: list[tuple[int, str]]) -> None:
        """InstrumentError if ``errs`` holds a command error (-100..-199) or one of the model's
        :attr:`fatal_errors`: not worth a retry."""
        bad = [(c, m) for c, m in errs if -199 <= c <= -100]
        if bad:
            listed = "; ".join(f"{c},\"{m}\"" for c, m in bad)
            self._event("gave_up", command=what, attempts=1, reason=listed)
            raise InstrumentError(f"{self.label}: the instrument refused {what!r}: {listed} (a command error: "
                                  "it discarded the rest of the message; the driver and the instrument disagree "
                                  "on the command set)")
        for c, m in errs:
            if c in self.fatal_errors:
                self._event("gave_up", command=what, attempts=1, reason=f"{c},\"{m}\"")
                raise InstrumentError(f"{self.label}: {what!r}: {c},\"{m}\": {self.fatal_errors[c]}")

    def ask(self, message: str, parse: Callable[[str], T]) -> T:
        """A query that is safe to repeat: the reply parsed by ``parse`` (ValueError or
        IndexError: a garbled reply). Timeouts and garbled replies are retried after a
        re-synchronisation; exhausted retries raise InstrumentError."""
        def once() -> T:
            reply = self._query_once(message)
            try:
                return parse(reply)
            except (ValueError, IndexError) as exc:
                raise Transient(f"{self.label}: cannot parse the reply {reply!r} to {message!r} ({exc})") from None

        return self._retrying(message, once)

    def _checked_once(self, message: str, parse: Callable[[str], T] | None) -> T | None:
        """One exchange of ``message;:SYST:ERR?``: the reply's last ``;``-separated field (outside
        quotes: an error text may hold a ``;``) is the first error entry; the fields before it
        (if ``parse``) the answer to ``message``. An error entry is drained and raised first (a
        command that failed may have left no answer)."""
        full = f"{message};:{ERR_QUERY}"
        reply = self._query_once(full)
        fields = split_reply(reply)
        try:
            first = error_entry(fields[-1])
        except ValueError:
            raise Transient(f"{self.label}: unexpected {ERR_QUERY} reply {fields[-1]!r} to {full!r}") from None
        if first[0] != 0:
            errs = [first]
            try:
                errs += self._drain()
            finally:
                self.stats["queue_errors"] += len(errs)
                listed = "; ".join(f"{c},\"{m}\"" for c, m in errs)
                self._event("queue_errors", command=message, errors=listed)
            self._refuse_command_errors(message, errs)
            raise Transient(f"{self.label}: {message!r} left errors in the queue: {listed}", resync=False)
        body = ";".join(fields[:-1])
        if parse is None:
            if body:
                raise Transient(f"{self.label}: unexpected reply {reply!r} to {full!r} (out of step?)")
            return None
        if len(fields) < 2:
            raise Transient(f"{self.label}: reply {reply!r} to {full!r} lacks the answer before the error entry")
        try:
            return parse(body)
        except (ValueError, IndexError) as exc:
            raise Transient(f"{self.label}: cannot parse the reply {body!r} to {message!r} ({exc})") from None

    def write_verified(self, message: str) -> None:
        """Send an idempotent message with ``;:SYST:ERR?`` appended (one exchange) and make
        sure the error queue is clean; otherwise send it again (bounded, with backoff)."""
        try:
            self._checked_once(message, None)  # the first attempt, without the retry machinery
        except Transient as exc:
            self._retrying(message, lambda: self._checked_once(message, None), failed=exc)

    def ask_checked(self, message: str, parse: Callable[[str], T]) -> T:
        """A repeatable query sent as ``message;:SYST:ERR?``: its parsed answer, given only when
        the error queue was clean in the same exchange; else retried (bounded, with backoff)."""
        try:
            return self._checked_once(message, parse)  # type: ignore[return-value]
        except Transient as exc:
            return self._retrying(message, lambda: self._checked_once(message, parse), failed=exc)  # type: ignore[return-value]

    # ------------------------------------------------------------------ common commands
    def idn(self) -> dict[str, str]:
        """``*IDN?`` -> manufacturer, model, serial, firmware; checks the model. A reply that
        is not four fields is garbled and retried; a wrong model is not."""
        def parse(reply: str) -> dict[str, str]:
            parts = [p.strip() for p in reply.split(",")]
            if len(parts) != 4:
                raise ValueError(f"unexpected *IDN? reply {reply!r}")
            return dict(zip(("manufacturer", "model", "serial", "firmware"), parts))

        info = self.ask("*IDN?", parse)
        if self.models and not any(m in info["model"] for m in self.models):
            raise InstrumentError(f"{self.label}: *IDN? says {info['model']!r}, expected one of {', '.join(self.models)}")
        self.idn_info = info
        return info

    def reset(self) -> None:
        """``*RST`` then ``*CLS`` (clears the error queue and status)."""
        self.write("*RST")
        self.write("*CLS")

    def _drain(self, out: list[tuple[int, str]] | None = None) -> list[tuple[int, str]]:
        """``SYST:ERR?`` until ``+0,"No error"`` (one attempt per read: a timeout or a reply
        that is not an error entry raises :class:`Transient`). Entries are appended to ``out``
        (a new list by default), so a caller that retries keeps what was read before."""
        out = [] if out is None else out
        for _ in range(self.max_errors - len(out)):
            reply = self._query_once(ERR_QUERY)
            try:
                code, msg = error_entry(reply)
            except ValueError:
                raise Transient(f"{self.label}: unexpected {ERR_QUERY} reply {reply!r}") from None
            if code == 0:
                return out
            out.append((code, msg))
        raise InstrumentError(f"{self.label}: error queue did not empty after {self.max_errors} reads: {out}")

    def errors(self) -> list[tuple[int, str]]:
        """Drain the error queue (``SYST:ERR?`` until ``+0,"No error"``). A timeout or a garbled
        reply is retried after a device clear; entries read before it are kept."""
        got: list[tuple[int, str]] = []

        def once() -> list[tuple[int, str]]:
            return self._drain(got)

        return self._retrying(ERR_QUERY, once, drain_on_resync=False)

    def check_errors(self, context: str) -> None:
        """Raise InstrumentError listing every queued error (the queue is empty afterwards)."""
        errs = self.errors()
        if errs:
            listed = "; ".join(f"{c},\"{m}\"" for c, m in errs)
            raise InstrumentError(f"{self.label}: {context} left errors in the queue: {listed}")

    def configure_verified(self, context: str, steps: Callable[[], None]) -> None:
        """Run an idempotent configuration sequence ``steps`` (plain writes), then drain the
        error queue; errors, timeouts or garbled replies make the whole sequence run again
        (bounded, with backoff); exhausted: InstrumentError listing the last errors."""
        def once() -> None:
            steps()
            errs = self._drain()
            self._refuse_command_errors(context, errs)
            if errs:
                listed = "; ".join(f"{c},\"{m}\"" for c, m in errs)
                self.stats["queue_errors"] += len(errs)
                self._event("queue_errors", command=context, errors=listed)
                raise Transient(f"{self.label}: {context} left errors in the queue: {listed}", resync=False)

        self._retrying(context, once)

    def identity(self) -> dict[str, Any]:
        return dict(self.idn_info)

    def close(self) -> None:
        try:
            self.resource.close()
        except Exception as exc:  # noqa: BLE001 - no raw pyvisa/OSError escapes a driver
            raise self._wrap(exc, "close") from exc
