"""Turning close pairs into duplicate groups, and picking what to keep."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

__all__ = ["Candidate", "Keepable", "choose_keeper", "connected_groups", "keep", "keeper_reason"]


class Keepable(Protocol):
    """What the keeper choice reads of a file: a Candidate, or any row with the same fields."""

    @property
    def id(self) -> int: ...
    @property
    def path(self) -> str: ...
    @property
    def pixels(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def mtime(self) -> float: ...


K = TypeVar("K", bound=Keepable)


@dataclass(frozen=True)
class Candidate:
    """One member of a duplicate group, with what the keeper choice needs."""

    id: int
    path: str
    pixels: int
    size: int
    mtime: float


def connected_groups(pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components of the pair graph, groups of two or more only.

    Each group is sorted and groups are sorted by their first member, so the
    result does not depend on the order the pairs arrive in.
    """
    parent: dict[int, int] = {}
    size: dict[int, int] = {}
    for x, y in pairs:
        _union(parent, size, operator.index(x), operator.index(y))
    return _collect(parent)


def choose_keeper(members: Sequence[K]) -> K:
    """Most pixels, then largest file, then oldest, then smallest path."""
    if not members:
        raise ValueError("cannot choose a keeper from an empty group")
    return min(members, key=_rank)


def _rank(candidate: Keepable) -> tuple[int, int, float, str]:
    # More pixels and more bytes usually mean less downscaling and less
    # recompression; the oldest file is most likely the original.
    return (-candidate.pixels, -candidate.size, candidate.mtime, candidate.path)


def _find(parent: dict[int, int], x: int) -> int:
    root = parent.setdefault(x, x)
    while parent[root] != root:
        root = parent[root]
    # Path compression: point the whole walk at the root.
    while parent[x] != root:
        parent[x], x = root, parent[x]
    return root


def _union(parent: dict[int, int], size: dict[int, int], x: int, y: int) -> None:
    rx, ry = _find(parent, x), _find(parent, y)
    if rx == ry:
        return
    # Union by size keeps trees shallow even for long chains of pairs.
    if size.get(rx, 1) < size.get(ry, 1):
        rx, ry = ry, rx
    parent[ry] = rx
    size[rx] = size.get(rx, 1) + size.pop(ry, 1)


def _collect(parent: dict[int, int]) -> list[list[int]]:
    members: dict[int, list[int]] = {}
    for x in parent:
        members.setdefault(_find(parent, x), []).append(x)
    groups = [sorted(group) for group in members.values() if len(group) >= 2]
    return sorted(groups, key=lambda group: group[0])


def keep(members: Sequence[K]) -> tuple[K, str]:
    """choose_keeper and keeper_reason in one ranking: what the cluster phase stores per group."""
    if not members:
        raise ValueError("cannot choose a keeper from an empty group")
    ranked = sorted(members, key=_rank)
    return ranked[0], (_reason(ranked[0], ranked[1]) if len(ranked) > 1 else "only member")


def keeper_reason(keeper: Keepable, members: Sequence[Keepable]) -> str:
    """Why the keeper won, told against its closest rival (stored with the group)."""
    rivals = [c for c in members if c.id != keeper.id]
    if not rivals:
        return "only member"
    return _reason(keeper, choose_keeper(rivals))


def _reason(keeper: Keepable, rival: Keepable) -> str:
    if keeper.pixels != rival.pixels:
        return f"most pixels ({keeper.pixels:,} vs {rival.pixels:,})"
    if keeper.size != rival.size:
        return f"same pixels, largest file ({keeper.size:,} vs {rival.size:,} bytes)"
    if keeper.mtime != rival.mtime:
        return "same pixels and size, oldest file"
    return "identical pixels, size and age: first by path"
