"""Planning how the bench gets from one state to the next so that every state on the way is safe.

Sources change one instrument and one command at a time, and a digipot board writes one
channel after another (an X9C wiper even walks tap by tap), so between two checked states the
bench passes through others. When the one-message change is not safe in every such state
(:meth:`labnet.bench.limits.LimitChecks.is_safe` on the pair), the rig applies a *plan* instead:

* :func:`plan_sources`: a sequence of patterns, each differing from the one before in one node
  only (that node set to its new level, or switched off first — "drop to a safe pattern" — and
  on later), every step safe; a one-node step has no hidden in-between states (a channel is at
  its old or its new setting; a supply slewing between two levels is covered by the interval
  the check allows for it).
* :func:`plan_ramp`: when no order of whole moves is safe, the same through intermediate
  levels (every node moves in 2, 4, 8 or 16 equal parts, a node switched on starting at 0 V).
* :func:`plan_codes`: an order of single-edge code changes under a held pattern, every one
  safe for every tap the wiper passes.

The functions are pure: they take the safety predicate and return the steps (or None).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

Pattern = Mapping[str, float]
SafePair = Callable[[Pattern, Pattern], bool]

_OLD, _OFF, _NEW = 0, 1, 2


def plan_sources(old: Pattern, new: Pattern, safe: SafePair, *, max_checks: int = 400) -> list[dict[str, float]] | None:
    """Patterns p_1 … p_m (p_m = ``new``) with p_i and p_{i−1} (p_0 = ``old``) differing in one
    node and ``safe(p_{i−1}, p_i)`` for every i; None if none is found within ``max_checks``
    calls of ``safe``. Depth first, moves toward ``new`` tried before switching a node off."""
    nodes = sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n) or (n in old) != (n in new))
    if not nodes:
        return []

    def pattern(state: tuple[int, ...]) -> dict[str, float]:
        p = {n: float(v) for n, v in old.items() if n not in nodes}
        for n, s in zip(nodes, state):
            src = old if s == _OLD else new if s == _NEW else None
            if src is not None and n in src:
                p[n] = float(src[n])
        return p

    goal = tuple(_NEW for _ in nodes)
    checks = 0
    seen: set[tuple[int, ...]] = set()
    path: list[tuple[int, ...]] = []

    def visit(state: tuple[int, ...]) -> bool:
        nonlocal checks
        if state == goal:
            return True
        here = pattern(state)
        moves = [(i, _NEW) for i, s in enumerate(state) if s != _NEW]
        moves += [(i, _OFF) for i, s in enumerate(state) if s == _OLD and nodes[i] in old and nodes[i] in new]
        for i, to in moves:
            nxt = state[:i] + (to,) + state[i + 1:]
            if nxt in seen or checks >= max_checks:
                continue
            seen.add(nxt)
            checks += 1
            if safe(here, pattern(nxt)):
                path.append(nxt)
                if visit(nxt):
                    return True
                path.pop()
        return False

    start = tuple(_OLD for _ in nodes)
    seen.add(start)
    if not visit(start):
        return None
    return [pattern(s) for s in path]


def plan_ramp(old: Pattern, new: Pattern, safe: SafePair, *, parts: tuple[int, ...] = (2, 4, 8, 16),
              max_checks: int = 400) -> list[dict[str, float]] | None:
    """Like :func:`plan_sources` through intermediate levels: every node moves in ``n`` equal
    parts from its old level (0 V if it was off) to its new one (0 V if it is to be off; switched
    off after the last part), each part planned by :func:`plan_sources` — the first ``n`` of
    ``parts`` for which every part has a plan."""
    nodes = set(old) | set(new)
    for n_parts in parts:
        steps: list[dict[str, float]] = []
        here: dict[str, float] = {k: float(v) for k, v in old.items()}
        ok = True
        for j in range(1, n_parts + 1):
            t = j / n_parts
            way = {n: float(old.get(n, 0.0)) + (float(new.get(n, 0.0)) - float(old.get(n, 0.0))) * t for n in nodes}
            if j == n_parts:
                way = {k: float(v) for k, v in new.items()}
            part = plan_sources(here, way, safe, max_checks=max_checks)
            if part is None:
                ok = False
                break
            steps += part
            here = way
        if ok:
            return steps
    return None


def plan_codes(old: np.ndarray, new: np.ndarray, safe: Callable[[np.ndarray, np.ndarray], bool], *,
               max_checks: int = 400) -> list[np.ndarray] | None:
    """Code vectors c_1 … c_m (c_m = ``new``, shape (E,)), each changing one edge of the one
    before (c_0 = ``old``) to its new code, with ``safe(c_{i−1}, c_i)`` for every i; None if no
    order is found within ``max_checks`` calls of ``safe``."""
    old = np.asarray(old, dtype=np.int64)
    new = np.asarray(new, dtype=np.int64)
    changed = np.flatnonzero(old != new).tolist()
    checks = 0
    seen: set[frozenset[int]] = set()
    path: list[np.ndarray] = []

    def visit(done: frozenset[int], here: np.ndarray) -> bool:
        nonlocal checks
        if len(done) == len(changed):
            return True
        for e in changed:
            if e in done:
                continue
            nxt = done | {e}
            if nxt in seen or checks >= max_checks:
                continue
            seen.add(nxt)
            cand = here.copy()
            cand[e] = new[e]
            checks += 1
            if safe(here, cand):
                path.append(cand)
                if visit(nxt, cand):
                    return True
                path.pop()
        return False

    if not visit(frozenset(), old.copy()):
        return None
    return path


__all__ = ["plan_codes", "plan_ramp", "plan_sources"]
