"""Declarative SCPI commands (PyMeasure style): :class:`Command`, :class:`Query` and the
argument validators :class:`Range` and :class:`Choice`.

A driver declares its commands as class attributes of a :class:`drivers.scpi.ScpiInstrument`
subclass; ``instrument.<name>(**args)`` validates every argument *before* anything is written
(a bad value raises ``ValueError`` naming the command and argument; no byte is sent), formats
the message and hands it to the instrument (``write`` for a command, ``ask``/``query`` for a
query).
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from labnet.core.errors import InstrumentError

T = TypeVar("T")


class CommandTarget(Protocol):
    """What a declared command needs of the instrument it is called on."""

    label: str

    def write(self, message: str) -> None: ...

    def query(self, message: str) -> str: ...

    def ask(self, message: str, parse: Callable[[str], T]) -> T: ...


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
        self._formatted: dict[tuple[tuple[str, Any], ...], str] = {}
        missing = _fields(template) - set(validators)
        if missing:
            raise TypeError(f"{template!r}: no validator for {sorted(missing)}")

    def format(self, **kw: Any) -> str:
        key = tuple(kw.items()) if all(type(v) is str for v in kw.values()) else None
        if key is not None:
            msg = self._formatted.get(key)
            if msg is not None:
                return msg
        if set(kw) != set(self.validators):
            raise TypeError(f"{self.template!r}: expected arguments {sorted(self.validators)}, got {sorted(kw)}")
        msg = self.template.format(**{k: self.validators[k](k, v) for k, v in kw.items()})
        if key is not None and len(self._formatted) < 256:
            # validators are pure: the same text arguments always give the same message
            self._formatted[key] = msg
        return msg

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, inst: CommandTarget | None, owner: type) -> Any:
        if inst is None:
            return self

        def call(**kw: Any) -> Any:
            return self._run(inst, self.format(**kw))

        call.__doc__ = self.__doc__
        return call

    def _run(self, inst: CommandTarget, msg: str) -> Any:
        inst.write(msg)


class Query(Command):
    """A declared query: writes the formatted command, parses the reply with ``parse``."""

    def __init__(self, template: str, parse: Callable[[str], Any], doc: str = "", *, retry: bool = True,
                 **validators: Callable[[str, Any], Any]) -> None:
        super().__init__(template, doc, **validators)
        self.parse = parse
        self.retry = retry  # False for a query with side effects that must not run twice

    def _run(self, inst: CommandTarget, msg: str) -> Any:
        if self.retry:
            return inst.ask(msg, self.parse)
        reply = inst.query(msg)
        try:
            return self.parse(reply)
        except (ValueError, IndexError) as exc:
            raise InstrumentError(f"{inst.label}: cannot parse the reply {reply!r} to {msg!r} ({exc})") from None


def floats(reply: str) -> list[float]:
    """``"+1.0E+00,-2.5E-03"`` -> ``[1.0, -0.0025]``."""
    return [float(x) for x in reply.strip().split(",")]
