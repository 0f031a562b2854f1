"""Near-duplicate search in Hamming space by banded hashes: never all pairs, exact recall for a threshold.

A 64-bit hash is cut into `bands` bands of consecutive bits. Pigeonhole: when two hashes differ in at
most t bits, at most t bands differ, so with bands > t some band is equal; more generally, some band
differs in at most floor(t / bands) bits. `Banding(bands, radius)` finds every pair at distance
<= bands * (radius + 1) - 1 (`max_distance`), radius 0 or 1:

- every item is filed under (band, band value) as a *home*;
- with radius 1 it is also filed, once per set bit of the band, under the band value with that bit
  cleared as a *probe*; two bands that differ in exactly one bit meet once, where the one holding the
  bit probes the other's home.

Candidates meet in a bucket (home-home, probe-home), then the full distance is checked. A pair close in
several bands is reported only in the first such band (`canonical`), so each pair comes out once.
Buckets are what a Beam GroupByKey forms (`entries` + `bucket_pairs`); `near_pairs` runs the same
search in-process on arrays, sorting instead of grouping. Cost grows with n^2 / 2^(band width):
wide bands (small `bands`) are cheap; `for_distance` picks the widest banding with exact recall.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from lvm_data.curation.hashes import HASH_BITS, popcount

BLOCK = 2048  # rows of a home-home comparison block (bounds memory in a huge bucket)
CHUNK = 1 << 20  # candidate pairs checked at once by near_pairs (bounds memory, keeps arrays in cache)


@dataclass(frozen=True)
class Banding:
    """How hashes are cut into bands, and the bit radius searched within a band (0 or 1)."""

    bands: int
    radius: int = 0
    bits: int = HASH_BITS

    def __post_init__(self):
        if not 1 <= self.bands <= self.bits // 2:
            raise ValueError(f"bands must be between 1 and {self.bits // 2}, got {self.bands}")
        if self.radius not in (0, 1):
            raise ValueError(f"band radius must be 0 or 1, got {self.radius}")

    @classmethod
    def for_distance(cls, max_distance: int) -> Banding:
        """The cheapest banding with exact recall up to `max_distance`: pure pigeonhole (t + 1 bands)
        up to 4 bits, else ceil((t + 1) / 2) bands searched at radius 1 (wider bands, fewer candidates)."""
        if max_distance < 0:
            raise ValueError(f"max_distance must be >= 0, got {max_distance}")
        if max_distance <= 4:
            return cls(max_distance + 1, 0)
        return cls(-(-(max_distance + 1) // 2), 1)

    @property
    def max_distance(self) -> int:
        """Every pair at most this far apart is found."""
        return self.bands * (self.radius + 1) - 1

    @cached_property
    def layout(self) -> tuple[tuple[int, int], ...]:
        """(shift, width) per band; band 0 holds the most significant bits."""
        base, extra = divmod(self.bits, self.bands)
        out, top = [], self.bits
        for band in range(self.bands):
            width = base + (band < extra)
            top -= width
            out.append((top, width))
        return tuple(out)

    def values(self, hashes: np.ndarray) -> np.ndarray:
        """(n, bands) uint64 band values of (n,) uint64 hashes."""
        hashes = np.asarray(hashes, dtype=np.uint64)
        return np.stack([(hashes >> np.uint64(s)) & np.uint64((1 << w) - 1) for s, w in self.layout], axis=1)

    def close_bands(self, xor: np.ndarray) -> np.ndarray:
        """(n, bands) bool: bands where two hashes (given by their xor) differ in <= radius bits."""
        return popcount(self.values(xor)) <= self.radius

    def canonical(self, band: int, xor: np.ndarray) -> np.ndarray:
        """Whether `band` is the first band in which each pair is close (so it is reported there only)."""
        if band == 0:
            return np.ones(len(xor), dtype=bool)
        return np.asarray(~self.close_bands(xor)[:, :band].any(axis=1))  # (n,) bool


def entries(banding: Banding, value: int) -> list[tuple[int, int, bool]]:
    """(band, bucket, is_probe) under which a hash is filed: its homes, and with radius 1 its probes."""
    out = []
    for band, (shift, width) in enumerate(banding.layout):
        home = (value >> shift) & ((1 << width) - 1)
        out.append((band, home, False))
        if banding.radius:
            out += [(band, home & ~(1 << bit), True) for bit in range(width) if home >> bit & 1]
    return out


def _checked(
    banding: Banding, band: int, max_distance: int, hashes: np.ndarray, i: np.ndarray, j: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate pairs (i, j) kept when within `max_distance` and canonical for `band`; i < j on return."""
    xor = hashes[i] ^ hashes[j]
    distance = popcount(xor)
    keep = (distance <= max_distance) & (i != j)
    keep[keep] = banding.canonical(band, xor[keep])
    i, j = i[keep], j[keep]
    return np.minimum(i, j), np.maximum(i, j), distance[keep].astype(np.int64)


def bucket_pairs(
    banding: Banding, band: int, homes: Sequence[tuple[Any, int]], probes: Sequence[tuple[Any, int]], max_distance: int
) -> list[tuple[Any, Any, int]]:
    """Pairs (id_a, id_b, distance), id_a < id_b, found in one bucket of `band`: homes with homes, probes
    with homes. `homes`/`probes` are (id, hash) with sortable ids."""
    items = list(homes) + list(probes)
    if not homes or len(items) < 2:
        return []
    hashes = np.array([h for _, h in items], dtype=np.uint64)
    n_homes = len(homes)
    found = []
    for i, j in _bucket_candidates(n_homes, len(items)):
        a, b, d = _checked(banding, band, max_distance, hashes, i, j)
        found += [(items[x][0], items[y][0], int(dist)) for x, y, dist in zip(a, b, d, strict=True)]
    ordered = [(x, y, d) if x < y else (y, x, d) for x, y, d in found if x != y]
    return sorted(set(ordered), key=lambda e: (e[0], e[1]))


def _bucket_candidates(n_homes: int, n_items: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Index pairs: every home with every later home, every probe (index >= n_homes) with every home."""
    cols = np.arange(n_homes)
    for start in range(0, n_homes, BLOCK):
        rows = np.arange(start, min(start + BLOCK, n_homes))
        i, j = np.repeat(rows, n_homes), np.tile(cols, len(rows))
        keep = j > i
        yield i[keep], j[keep]
    for start in range(n_homes, n_items, BLOCK):
        rows = np.arange(start, min(start + BLOCK, n_items))
        yield np.repeat(rows, n_homes), np.tile(cols, len(rows))


def near_pairs(hashes: np.ndarray, max_distance: int, banding: Banding | None = None) -> tuple[np.ndarray, ...]:
    """Every pair (i, j, distance), i < j, of (n,) uint64 `hashes` within `max_distance`, in-process.

    Same buckets and rules as the Beam path; sorted by (i, j). Raises ValueError when `banding` cannot
    guarantee exact recall for `max_distance`.
    """
    banding = banding or Banding.for_distance(max_distance)
    if banding.max_distance < max_distance:
        raise ValueError(
            f"{banding.bands} bands at radius {banding.radius} find distances up to "
            f"{banding.max_distance}, not {max_distance}; use more bands or radius 1"
        )
    hashes = np.asarray(hashes, dtype=np.uint64)
    values = banding.values(hashes)
    parts = [(np.zeros(0, np.int64),) * 3]
    for band in range(banding.bands):
        order = np.argsort(values[:, band], kind="stable")
        ordered, sorted_hashes = values[order, band], hashes[order]  # work in sorted order: local memory access
        for p, q in _band_candidates(ordered, banding.radius, banding.layout[band][1]):
            a, b, d = _checked(banding, band, max_distance, sorted_hashes, p, q)
            parts.append((np.minimum(order[a], order[b]), np.maximum(order[a], order[b]), d))
    i, j, d = (np.concatenate(x) for x in zip(*parts, strict=True))
    order = np.lexsort((j, i))
    return i[order], j[order], d[order]


def _band_candidates(ordered: np.ndarray, radius: int, width: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Position pairs in sorted band values meeting in a bucket: equal values (home-home), then
    one-bit-cleared probes (probe-home), in chunks of about CHUNK pairs."""
    yield from equal_runs(ordered)
    if not radius:
        return
    for bit in range(width):
        holders = np.flatnonzero((ordered >> np.uint64(bit)) & np.uint64(1))
        probe = ordered[holders] & ~np.uint64(1 << bit)
        low = np.searchsorted(ordered, probe, "left")
        counts = np.searchsorted(ordered, probe, "right") - low
        ends = np.cumsum(counts)
        for first, last in _chunks(ends):
            c, lo = counts[first:last], low[first:last]
            total = int(c.sum())
            if total:
                starts = np.repeat(lo - (np.cumsum(c) - c), c)
                yield np.repeat(holders[first:last], c), starts + np.arange(total)


def _chunks(ends: np.ndarray) -> Iterator[tuple[int, int]]:
    """[first, last) index ranges whose pair counts (cumulative `ends`) add up to about CHUNK each."""
    first, n = 0, len(ends)
    while first < n:
        base = ends[first - 1] if first else 0
        last = max(first + 1, int(np.searchsorted(ends, base + CHUNK, "right")))
        yield first, min(last, n)
        first = last


def equal_runs(ordered: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """All position pairs within runs of equal sorted values, k positions apart for k = 1, 2, ..."""
    n = len(ordered)
    if n < 2:
        return
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, n])
    size_at = np.repeat(sizes, sizes)
    position = np.arange(n) - np.repeat(starts, sizes)
    active = np.flatnonzero(size_at >= 2)
    k = 1
    while active.size:
        active = active[position[active] + k < size_at[active]]
        if active.size:
            yield active, active + k
        k += 1
