"""Roles: the same things in swapped places ("A over B" / "B over A", "from A to B" /
"from B to A", "does X help Y" / "does Y help X"). Moving a whole phrase ("In RAG, how ..." /
"How ... in RAG?") or listing things in another order ("A and B", "A or B") is not a swap."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ponder_embedding.cache.verifier.lexicon import ROLE_MARKERS, SYMMETRIC
from ponder_embedding.cache.verifier.normalise import Analysis


@dataclass(frozen=True, slots=True)
class _Unit:
    """A word, a role marker, or a list of words joined by and/or (order inside ignored);
    `key` tells the nth occurrence of the same thing apart."""

    key: tuple[str, ...]
    surface: str
    marker: bool


def _units(analysis: Analysis) -> list[_Unit]:
    """The text as units: content words and role markers, lists merged."""
    groups: list[list[tuple[str, str]]] = []
    marker: list[bool] = []
    join_next = False
    for token in analysis.tokens:
        if token.lower in SYMMETRIC:
            join_next = bool(groups) and not marker[-1]
            continue
        is_marker = token.lower in ROLE_MARKERS
        if token.negation or (token.stop and not is_marker):
            join_next = False
            continue
        if join_next and not is_marker:
            groups[-1].append((token.canon, token.surface))
        else:
            groups.append([(token.canon, token.surface)])
            marker.append(is_marker)
        join_next = False
    seen: Counter[tuple[str, ...]] = Counter()
    units = []
    for group, is_marker in zip(groups, marker, strict=True):
        base = tuple(sorted(canon for canon, _ in group))
        seen[base] += 1
        units.append(_Unit((*base, f"#{seen[base]}"), group[0][1], is_marker))
    return units


def check_roles(a: Analysis, b: Analysis) -> tuple[str, str] | None:
    """The two things that swap places around a third that stays between them, if any."""
    units_b = _units(b)
    position_b = {unit.key: i for i, unit in enumerate(units_b)}
    order_a = [unit for unit in _units(a) if unit.key in position_b]
    for i, x in enumerate(order_a):
        if x.marker:
            continue
        for j in range(i + 2, len(order_a)):
            y = order_a[j]
            if y.marker or position_b[x.key] < position_b[y.key]:
                continue
            middle_b = {u.key for u in units_b[position_b[y.key] + 1 : position_b[x.key]]}
            if any(z.key in middle_b for z in order_a[i + 1 : j]):
                return x.surface, y.surface
    return None
