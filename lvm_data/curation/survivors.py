"""Which of two duplicates survives: the one that sorts first, by a stable id.

Ids: an item is (source, key); a sentence is (source, its first item's key + sentence id). Both sort as
tuples of strings, so a job that wants one source's copies kept can name it to sort first.

- Exact duplicates: in a group of equal digests the first id survives; every other id is removed and
  names it.
- Near duplicates: an id is removed when it has a near duplicate that sorts before it; it names the
  nearest such (ties: the first). The first id of every cluster survives, no two survivors are near
  duplicates of each other, and each decision depends only on the set of candidates, never on worker
  count, arrival order or how the job was split into runs. In a chain a ~ b ~ c where a and c are
  not close, both b and c go: the rule may remove more than a sequential greedy pass, never less.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

Id = tuple[str, str]


@dataclass(frozen=True, order=True)
class Match:
    """Why `loser` is removed: `survivor` sorts before it; `distance` is Hamming bits or 1 - Jaccard."""

    loser: Id
    survivor: Id
    distance: float = 0.0


def exact_losers(ids: Iterable[Id]) -> list[Match]:
    """One group of exact duplicates (any order) -> a Match for every id but the first."""
    ordered = sorted(set(ids))
    return [Match(loser, ordered[0]) for loser in ordered[1:]]


def group_exact(pairs: Iterable[tuple[Hashable, Id]]) -> list[Match]:
    """(digest, id) pairs -> Matches of every exact-duplicate group, sorted by loser."""
    groups: dict[Hashable, list[Id]] = {}
    for digest, item in pairs:
        groups.setdefault(digest, []).append(item)
    return sorted(m for members in groups.values() if len(members) > 1 for m in exact_losers(members))


def near_losers(edges: Iterable[tuple[Id, Id, float]]) -> list[Match]:
    """Near pairs (a, b, distance) in any order -> one Match per removed id (the later of each pair, naming
    its nearest earlier neighbour, then the first), sorted by loser."""
    best: dict[Id, tuple[float, Id]] = {}
    for a, b, distance in edges:
        if a == b:
            continue
        first, second = (a, b) if a < b else (b, a)
        best[second] = min(best.get(second, (distance, first)), (distance, first))
    return sorted(Match(loser, survivor, distance) for loser, (distance, survivor) in best.items())
