"""Reading TOML files a person wrote, with errors that name the file, the key and what was expected.

:class:`Table` wraps one TOML table and hands out typed, range-checked values; every problem
becomes a :class:`~labnet.core.errors.ConfigError` (``file: key: problem``). Unknown keys are errors
too (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import builtins
import contextvars
import dataclasses
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from labnet.core.errors import ConfigError

T = TypeVar("T")
_MISSING: Any = object()


@dataclasses.dataclass(frozen=True)
class KeyRead:
    """One key read by a validator (recorded only inside :func:`recording`, for the key reference):
    file, dotted key, the reader (``float``, ``str``, …), whether the file gave it, the value given,
    the default (``_MISSING``: required) and the checks (``lo``/``hi``/``choices``/``length``)."""

    file: str
    key: str
    kind: str
    given: bool
    value: Any
    default: Any
    checks: tuple[tuple[str, Any], ...] = ()

    @property
    def required(self) -> bool:
        return self.default is _MISSING


_RECORDING: contextvars.ContextVar[list[KeyRead] | None] = contextvars.ContextVar("labnet_key_reads", default=None)


class recording:  # noqa: N801 - used as ``with recording() as reads:``
    """Context manager collecting a :class:`KeyRead` for every key validators read (labnet.config.keyref)."""

    def __enter__(self) -> list[KeyRead]:
        self.reads: list[KeyRead] = []
        self._token = _RECORDING.set(self.reads)
        return self.reads

    def __exit__(self, *exc: object) -> None:
        _RECORDING.reset(self._token)


class quiet(recording):  # noqa: N801
    """Context manager in which reads are not recorded (values checked through a helper table)."""

    def __enter__(self) -> list[KeyRead]:
        self.reads = []
        self._token = _RECORDING.set(None)
        return self.reads


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; unreadable or malformed files raise ConfigError naming the line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), "-", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(p), "-", f"cannot read file ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), "-", f"malformed TOML: {exc}") from None


class Table:
    """One TOML table of a file, read key by key with validation.

    The readers are named after what they return (``str``, ``int``, ``float``, ``bool``); inside
    the class those names are the methods, so the annotations spell the types ``builtins.*``.

    Parameters
    ----------
    data : mapping
        The table's contents.
    file : str
        The file it came from.
    prefix : str
        Dotted path of this table in the file (``""`` for the top level).
    """

    def __init__(self, data: Mapping[builtins.str, Any], file: builtins.str, prefix: builtins.str = "") -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(file, prefix or "-", f"expected a table, got {type(data).__name__}")
        self.data = data
        self.file = file
        self.prefix = prefix
        self._used: set[str] = set()

    def key(self, name: builtins.str) -> builtins.str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: builtins.str, problem: builtins.str) -> ConfigError:
        return ConfigError(self.file, self.key(name), problem)

    def has(self, name: builtins.str) -> builtins.bool:
        return name in self.data

    def _note(self, name: builtins.str, kind: builtins.str, default: Any, **checks: Any) -> None:
        reads = _RECORDING.get()
        if reads is not None:
            given = name in self.data
            reads.append(KeyRead(self.file, self.key(name), kind, given, self.data.get(name) if given else None, default,
                                 tuple((k, v) for k, v in checks.items() if v is not None)))

    def declare(self, name: builtins.str, kind: builtins.str, default: Any = _MISSING, **checks: Any) -> None:
        """Record a key this table may hold without reading it (for the key reference): a validator
        that reads optional keys only when present declares the others with their defaults."""
        self._note(name, kind, default, **checks)

    def raw(self, name: builtins.str, default: Any = _MISSING) -> Any:
        self._note(name, "value", default)
        return self._get(name, default)

    def _get(self, name: builtins.str, default: Any) -> Any:
        self._used.add(name)
        if name in self.data:
            return self.data[name]
        if default is _MISSING:
            raise self.error(name, "missing required key")
        return default

    def table(self, name: builtins.str, required: builtins.bool = True) -> Table:
        self._note(name, "table", _MISSING if required else {})
        v = self._get(name, _MISSING if required else {})
        if not isinstance(v, Mapping):
            raise self.error(name, f"expected a table, got {_kind(v)}")
        return Table(v, self.file, self.key(name))

    def str(self, name: builtins.str, default: Any = _MISSING, choices: Iterable[builtins.str] | None = None) -> builtins.str:
        choices = None if choices is None else tuple(choices)
        self._note(name, "string", default, choices=choices)
        v = self._get(name, default)
        if not isinstance(v, str):
            raise self.error(name, f"expected a string, got {_kind(v)}")
        if choices is not None:
            ch = list(choices)
            if v not in ch:
                raise self.error(name, f"expected one of {ch}, got {v!r}")
        return v

    def bool(self, name: builtins.str, default: Any = _MISSING) -> builtins.bool:
        self._note(name, "boolean", default)
        v = self._get(name, default)
        if not isinstance(v, bool):
            raise self.error(name, f"expected true or false, got {_kind(v)}")
        return v

    def int(self, name: builtins.str, default: Any = _MISSING, lo: builtins.int | None = None,
            hi: builtins.int | None = None) -> builtins.int:
        self._note(name, "integer", default, lo=lo, hi=hi)
        v = self._get(name, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(name, f"expected an integer, got {_kind(v)}")
        _range(self, name, v, lo, hi)
        return v

    def float(self, name: builtins.str, default: Any = _MISSING, lo: builtins.float | None = None,
              hi: builtins.float | None = None, lo_open: builtins.bool = False) -> builtins.float:
        self._note(name, "number", default, lo=lo, hi=hi, lo_open=lo_open or None)
        v = self._get(name, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.error(name, f"expected a number, got {_kind(v)}")
        v = float(v)
        if v != v or v in (float("inf"), float("-inf")):
            raise self.error(name, f"expected a finite number, got {v}")
        if lo_open and lo is not None and v <= lo:
            raise self.error(name, f"expected a value > {lo}, got {v}")
        _range(self, name, v, lo, hi)
        return v

    def floats(self, name: builtins.str, default: Any = _MISSING, length: builtins.int | None = None,
               lo: builtins.float | None = None, hi: builtins.float | None = None) -> list[builtins.float]:
        self._note(name, "list of numbers", default, length=length, lo=lo, hi=hi)
        v = self._get(name, default)
        if not isinstance(v, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            raise self.error(name, f"expected a list of numbers, got {_kind(v)}")
        if length is not None and len(v) != length:
            raise self.error(name, f"expected {length} values, got {len(v)}")
        for x in v:
            if float(x) != float(x) or float(x) in (float("inf"), float("-inf")):
                raise self.error(name, f"expected finite numbers, got {x}")
            _range(self, name, float(x), lo, hi)
        return [float(x) for x in v]

    def strs(self, name: builtins.str, default: Any = _MISSING) -> list[builtins.str]:
        self._note(name, "list of strings", default)
        v = self._get(name, default)
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.error(name, f"expected a list of strings, got {_kind(v)}")
        return list(v)

    def get(self, name: builtins.str, convert: Callable[[Any], T], default: Any = _MISSING) -> T:
        self._note(name, getattr(convert, "__name__", "value"), default)
        v = self._get(name, default)
        try:
            return convert(v)
        except (TypeError, ValueError) as exc:
            raise self.error(name, str(exc)) from None

    def refuse_renamed(self, renamed: Mapping[builtins.str, builtins.str]) -> None:
        """Raise on a key that was renamed (old name -> new name), naming the new one."""
        for old, new in renamed.items():
            if old in self.data:
                raise self.error(old, f"renamed: use {self.key(new)!r} instead (units in key names: _s is seconds, "
                                      "_siemens is siemens, _ohm is ohms)")

    def finish(self, allowed_extra: Iterable[builtins.str] = ()) -> None:
        """Raise on any key that was never read (a typo or an unsupported option)."""
        extra = set(allowed_extra)
        for k in self.data:
            if k not in self._used and k not in extra:
                known = sorted(self._used | extra)
                raise self.error(k, f"unknown key (known keys here: {', '.join(known) or 'none'})")


def default(cls: type, name: str) -> Any:
    """The default of field ``name`` of the settings dataclass ``cls``: the one place it is written."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            break
    raise KeyError(f"{cls.__name__}.{name} has no default")


def _range(t: Table, name: str, v: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and v < lo:
        raise t.error(name, f"expected a value >= {lo}, got {v}")
    if hi is not None and v > hi:
        raise t.error(name, f"expected a value <= {hi}, got {v}")


def _kind(v: Any) -> str:
    if isinstance(v, Mapping):
        return "a table"
    if isinstance(v, list):
        return f"a list {v!r}"[:60]
    return f"{type(v).__name__} {v!r}"[:60]
