"""A small SCPI base for instruments on pyvisa-resource-like objects.

An instrument driver subclasses :class:`ScpiInstrument` and declares its commands as class
attributes (PyMeasure style)::

    class Supply(ScpiInstrument):
        set_voltage = Command("VOLT {voltage_v:.6g},(@{channel})", "Set a channel's level (V).",
                              voltage_v=Range(0, 6), channel=Choice("1", "2", "3"))
        measure_current = Query("MEAS:CURR? (@{channel})", float, "Current (A).", channel=Choice("1", "2", "3"))

Arguments are validated *before* anything is written (a bad value raises ``ValueError``
with the command and argument named, and no byte is sent). The base handles termination
(``\\n``), timeouts (turned into :class:`~labnet.errors.InstrumentError` naming the
instrument and the command), ``*IDN?``, ``*RST``/``*CLS`` and draining ``SYST:ERR?``.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

from labnet.errors import InstrumentError


class Range:
    """Validator: a finite number within ``lo``..``hi`` (inclusive)."""

    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi

    def __call__(self, name: str, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or not self.lo <= v <= self.hi:
            raise ValueError(f"{name}={v!r}: expected a number within {self.lo}..{self.hi}")
        return v


class Choice:
    """Validator: one of the given values (compared as strings)."""

    def __init__(self, *values: str) -> None:
        self.values = tuple(str(x) for x in values)

    def __call__(self, name: str, v: Any) -> Any:
        if str(v) not in self.values:
            raise ValueError(f"{name}={v!r}: expected one of {', '.join(self.values)}")
        return str(v)


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


class Command:
    """A declared write-only command: ``instrument.<name>(**args)`` formats, validates, writes."""

    def __init__(self, template: str, doc: str = "", **validators: Callable[[str, Any], Any]) -> None:
        self.template = template
        self.validators = validators
        self.__doc__ = doc
        missing = _fields(template) - set(validators)
        if missing:
            raise TypeError(f"{template!r}: no validator for {sorted(missing)}")

    def format(self, **kw: Any) -> str:
        if set(kw) != set(self.validators):
            raise TypeError(f"{self.template!r}: expected arguments {sorted(self.validators)}, got {sorted(kw)}")
        return self.template.format(**{k: self.validators[k](k, v) for k, v in kw.items()})

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, inst: ScpiInstrument | None, owner: type) -> Any:
        if inst is None:
            return self

        def call(**kw: Any) -> Any:
            return self._run(inst, self.format(**kw))

        call.__doc__ = self.__doc__
        return call

    def _run(self, inst: ScpiInstrument, msg: str) -> Any:
        inst.write(msg)


class Query(Command):
    """A declared query: writes the formatted command, parses the reply with ``parse``."""

    def __init__(self, template: str, parse: Callable[[str], Any], doc: str = "", **validators: Callable[[str, Any], Any]) -> None:
        super().__init__(template, doc, **validators)
        self.parse = parse

    def _run(self, inst: ScpiInstrument, msg: str) -> Any:
        reply = inst.query(msg)
        try:
            return self.parse(reply)
        except (ValueError, IndexError) as exc:
            raise InstrumentError(f"{inst.label}: cannot parse the reply {reply!r} to {msg!r} ({exc})") from None


def floats(reply: str) -> list[float]:
    """``"+1.0E+00,-2.5E-03"`` -> ``[1.0, -0.0025]``."""
    return [float(x) for x in reply.strip().split(",")]


class ScpiInstrument:
    """Base of SCPI drivers.

    Parameters
    ----------
    resource : pyvisa-resource-like
        Anything with ``write``, ``read``, ``query``, ``close`` and the attributes
        ``timeout`` (ms), ``read_termination``, ``write_termination``.
    label : str
        How errors name this instrument (e.g. ``"meter (DAQ970A)"``).
    timeout_s : float
        Longest wait for a reply (s); ``READ?`` of a long scan may need more.
    """

    #: Substrings of the *IDN? model field this driver accepts (empty: any).
    models: tuple[str, ...] = ()
    max_errors = 32

    def __init__(self, resource: Any, label: str = "", timeout_s: float = 5.0) -> None:
        self.resource = resource
        self.label = label or type(self).__name__
        self.timeout_s = timeout_s
        self.idn_info: dict[str, str] = {}
        resource.read_termination = "\n"
        resource.write_termination = "\n"
        resource.timeout = timeout_s * 1000.0

    # ------------------------------------------------------------------ transport
    def _wrap(self, exc: Exception, what: str) -> InstrumentError:
        text = str(exc)
        if "TMO" in text or "imeout" in text:
            return InstrumentError(f"{self.label}: no reply to {what!r} within {self.timeout_s:g} s (timeout)")
        return InstrumentError(f"{self.label}: {what!r} failed: {text}")

    def write(self, message: str) -> None:
        """Send one message (termination added by the resource)."""
        try:
            self.resource.write(message)
        except Exception as exc:  # noqa: BLE001 - pyvisa raises VisaIOError, others OSError
            raise self._wrap(exc, message) from exc

    def query(self, message: str) -> str:
        """Send a query and return its reply without the termination."""
        try:
            reply = self.resource.query(message)
        except Exception as exc:  # noqa: BLE001
            err = self._wrap(exc, message)
            if "timeout" in str(err):
                self._device_clear()
            raise err from exc
        if not isinstance(reply, str):
            raise InstrumentError(f"{self.label}: reply to {message!r} is not text: {reply!r}")
        return reply.strip()

    def _device_clear(self) -> None:
        """After a timeout: device clear, so a late reply cannot answer the next query."""
        clear = getattr(self.resource, "clear", None)
        if clear is None:
            return
        try:
            clear()
        except Exception:  # noqa: BLE001, S110 - best effort; the timeout is the error that matters
            pass

    # ------------------------------------------------------------------ common commands
    def idn(self) -> dict[str, str]:
        """``*IDN?`` -> manufacturer, model, serial, firmware; checks the model."""
        reply = self.query("*IDN?")
        parts = [p.strip() for p in reply.split(",")]
        if len(parts) != 4:
            raise InstrumentError(f"{self.label}: unexpected *IDN? reply {reply!r}")
        info = dict(zip(("manufacturer", "model", "serial", "firmware"), parts))
        if self.models and not any(m in info["model"] for m in self.models):
            raise InstrumentError(f"{self.label}: *IDN? says {info['model']!r}, expected one of {', '.join(self.models)}")
        self.idn_info = info
        return info

    def reset(self) -> None:
        """``*RST`` then ``*CLS`` (clears the error queue and status)."""
        self.write("*RST")
        self.write("*CLS")

    def errors(self) -> list[tuple[int, str]]:
        """Drain the error queue (``SYST:ERR?`` until ``+0,"No error"``)."""
        out: list[tuple[int, str]] = []
        for _ in range(self.max_errors):
            reply = self.query("SYST:ERR?")
            code_s, _, msg = reply.partition(",")
            try:
                code = int(code_s)
            except ValueError:
                raise InstrumentError(f"{self.label}: unexpected SYST:ERR? reply {reply!r}") from None
            if code == 0:
                return out
            out.append((code, msg.strip().strip('"')))
        raise InstrumentError(f"{self.label}: error queue did not empty after {self.max_errors} reads: {out}")

    def check_errors(self, context: str) -> None:
        """Raise InstrumentError listing every queued error (the queue is empty afterwards)."""
        errs = self.errors()
        if errs:
            listed = "; ".join(f"{c},\"{m}\"" for c, m in errs)
            raise InstrumentError(f"{self.label}: {context} left errors in the queue: {listed}")

    def identity(self) -> dict[str, Any]:
        return dict(self.idn_info)

    def close(self) -> None:
        self.resource.close()


def channel_list(channels: list[str]) -> str:
    """``["101", "102", "103", "105"]`` -> ``"(@101:103,105)"`` (ascending, ranges merged)."""
    nums = sorted(int(c) for c in channels)
    parts: list[str] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        parts.append(f"{nums[i]}:{nums[j]}" if j > i else f"{nums[i]}")
        i = j + 1
    return "(@" + ",".join(parts) + ")"
