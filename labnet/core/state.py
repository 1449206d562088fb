"""Explicit run state: the one protocol every stateful object of a run implements.

An object whose state a resumed run needs (the rig's host record, each driver, the
simulator's model, its emulators, fault plan and clock) implements :class:`Stateful`:
``state()`` returns a JSON-serialisable dict (numpy generators as
``bit_generator.state``, arrays as lists) and ``restore(state)`` puts it back. Each such
class also declares ``STATE_SCHEMA``: the keys its state has and the JSON type of each
(a Python type or tuple of types, a nested Stateful class, or a mapping of fixed keys).

A run's state is a tree assembled by role name from a *parts* mapping
(role -> Stateful or a nested parts mapping); :func:`collect` and :func:`restore_parts`
walk it, :func:`layout_of` gives the classes at its leaves, and :func:`problem` checks a
saved tree against a layout (missing, unknown or mistyped entries) before anything is
opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Stateful(Protocol):
    """An object of a run whose state is saved in checkpoints and restored on resume."""

    def state(self) -> dict[str, Any]:
        """JSON-serialisable state (what :meth:`restore` needs)."""
        ...

    def restore(self, state: dict[str, Any]) -> None:
        """Put back what :meth:`state` returned (already checked against ``STATE_SCHEMA``)."""
        ...


#: role name -> a Stateful object, or a nested mapping of the same kind
Parts = Mapping[str, Any]
#: role name -> a Stateful class (with ``STATE_SCHEMA``), or a nested layout
Layout = Mapping[str, Any]


def collect(parts: Parts) -> dict[str, Any]:
    """The state tree of ``parts``: the same role names, each leaf's ``state()``."""
    return {role: collect(p) if isinstance(p, Mapping) else p.state() for role, p in parts.items()}


def restore_parts(parts: Parts, tree: Mapping[str, Any]) -> None:
    """``restore`` every leaf of ``parts`` from the entry of the same role in ``tree``
    (checked first with :func:`problem`)."""
    for role, p in parts.items():
        if isinstance(p, Mapping):
            restore_parts(p, tree[role])
        else:
            p.restore(dict(tree[role]))


def layout_of(parts: Parts) -> dict[str, Any]:
    """The layout of ``parts``: the same role names, each leaf's class."""
    return {role: layout_of(p) if isinstance(p, Mapping) else type(p) for role, p in parts.items()}


def _type_name(t: Any) -> str:
    ts = t if isinstance(t, tuple) else (t,)
    names = {dict: "object", list: "array", str: "string", int: "integer", float: "number", bool: "boolean",
             type(None): "null"}
    return " or ".join(names.get(x, getattr(x, "__name__", str(x))) for x in ts)


def _is(value: Any, t: Any) -> bool:
    """``value`` (from JSON) is of schema type ``t``: a number may be an integer, a bool is no number."""
    for x in t if isinstance(t, tuple) else (t,):
        if x is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if x is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if x not in (int, float) and isinstance(value, x):
            return True
    return False


def problem(tree: Any, layout: Any, path: str = "") -> tuple[str, str] | None:
    """The first entry of ``tree`` that does not fit ``layout``, as ``(entry path, problem)``,
    or None. ``layout`` is a mapping of roles (fixed keys), a Stateful class (its
    ``STATE_SCHEMA``), or a JSON type (or tuple of types)."""
    where = path or "<root>"
    if isinstance(layout, Mapping) or hasattr(layout, "STATE_SCHEMA"):
        keys: Mapping[str, Any] = layout if isinstance(layout, Mapping) else layout.STATE_SCHEMA
        if not isinstance(tree, dict):
            return where, f"expected an object, got {type(tree).__name__}"
        optional: frozenset[str] = getattr(layout, "STATE_OPTIONAL", frozenset())
        for k in keys:
            if k not in tree and k not in optional:
                return f"{path}.{k}" if path else k, "missing entry"
        for k in tree:
            if k not in keys:
                return f"{path}.{k}" if path else str(k), f"unknown entry (expected {', '.join(keys) or 'none'})"
        for k, sub in keys.items():
            if k not in tree:
                continue  # an optional entry an older version did not write
            found = problem(tree[k], sub, f"{path}.{k}" if path else k)
            if found is not None:
                return found
        return None
    if not _is(tree, layout):
        return where, f"expected {_type_name(layout)}, got {type(tree).__name__}"
    return None


__all__ = ["Layout", "Parts", "Stateful", "collect", "layout_of", "problem", "restore_parts"]
