"""Token-space near duplicates: MinHash over token n-grams, found by LSH banding.

A sentence's tokens (uint16 codes, image-major raster order) become the set of its n-grams (n <= 4
consecutive codes packed into one uint64, so shingles are exact). MinHash keeps, for each of
`permutations` seeded hash functions (a splitmix64 mix of the shingle xor a salt), the minimum over the
set; the share of equal minima estimates the Jaccard similarity of two sentences' n-gram sets.

LSH: the signature is cut into `bands` bands of `permutations / bands` rows; two sentences become
candidates when one band is equal, which happens with probability 1 - (1 - J^rows)^bands (about 0.99 at
J = 0.8 with the defaults). Candidates are kept when their estimated similarity reaches `threshold`.
A pair sharing several bands is reported only in the first (`canonical`). `bucket_pairs` is what a Beam
bucket runs; `near_pairs` is the same search in-process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from lvm_data.curation.banding import equal_runs
from lvm_data.determinism import rng_for

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class MinHashSpec:
    """The MinHash setting, and the job file's `near_duplicate_sentences` options (lvm_data.curation.config):
    signatures of `permutations` minima over token `ngram`s, cut into `bands` LSH bands; a pair is removed at
    estimated Jaccard >= `threshold`. Raises ValueError naming the option that cannot be used."""

    ngram: int = 4
    permutations: int = 128
    bands: int = 32
    threshold: float = 0.8
    seed: int = 0

    def __post_init__(self):
        if not 1 <= self.ngram <= 4:
            raise ValueError(f"ngram must be 1 to 4 tokens (a shingle is packed in 64 bits), got {self.ngram}")
        if self.permutations < 1 or self.bands < 1 or self.permutations % self.bands:
            raise ValueError(f"permutations ({self.permutations}) must be a positive multiple of bands ({self.bands})")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")

    @property
    def rows(self) -> int:
        return self.permutations // self.bands

    @cached_property
    def salts(self) -> np.ndarray:
        """(permutations, 1) uint64 salts, one per hash function, from the seed by hashing."""
        rng = rng_for(self.seed, "minhash", str(self.permutations))
        return rng.integers(0, np.iinfo(np.uint64).max, size=(self.permutations, 1), dtype=np.uint64, endpoint=True)

    def candidate_probability(self, similarity: float) -> float:
        """Chance that two sentences of this Jaccard similarity share at least one band."""
        return 1.0 - (1.0 - similarity**self.rows) ** self.bands


def shingles(tokens: np.ndarray, n: int) -> np.ndarray:
    """Distinct n-grams of a token sequence, each packed into a uint64 (a shorter sequence is one shingle)."""
    codes = np.asarray(tokens, dtype=np.uint64).reshape(-1)
    if len(codes) < n:
        codes = np.concatenate([codes, np.zeros(n - len(codes), np.uint64)])
    packed = np.zeros(len(codes) - n + 1, dtype=np.uint64)
    for k in range(n):
        packed |= codes[k : len(codes) - n + 1 + k] << np.uint64(16 * k)
    return np.unique(packed)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, element-wise on uint64 (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def signature(tokens: np.ndarray, spec: MinHashSpec) -> np.ndarray:
    """(permutations,) uint32 MinHash signature of a sentence's tokens."""
    grams = shingles(tokens, spec.ngram)[None, :]  # (1, shingles)
    with np.errstate(over="ignore"):
        mins = _mix(grams ^ spec.salts).min(axis=1)  # (permutations,)
    return (mins >> np.uint64(32)).astype(np.uint32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity: the share of equal minima."""
    return float(np.mean(np.asarray(a) == np.asarray(b)))


def band_keys(sig: np.ndarray, spec: MinHashSpec) -> list[tuple[int, bytes]]:
    """(band, bucket) pairs a signature is filed under (bucket = the band's rows as bytes)."""
    sig = np.ascontiguousarray(sig, dtype=np.uint32)
    return [(band, sig[band * spec.rows : (band + 1) * spec.rows].tobytes()) for band in range(spec.bands)]


def digest(tokens: np.ndarray) -> str:
    """Exact-duplicate key of a sentence: blake2b-128 of its codes."""
    return hashlib.blake2b(np.ascontiguousarray(tokens, dtype=np.uint16).tobytes(), digest_size=16).hexdigest()


def _kept(sigs: np.ndarray, band: int, spec: MinHashSpec, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, ...]:
    """Candidate pairs kept: estimated similarity >= threshold and `band` is the first band they share."""
    equal = sigs[i] == sigs[j]  # (pairs, permutations)
    sim = equal.mean(axis=1)
    shared = equal.reshape(len(i), spec.bands, spec.rows).all(axis=2)  # (pairs, bands)
    keep = (sim >= spec.threshold) & ~shared[:, :band].any(axis=1) & (i != j)
    return np.minimum(i, j)[keep], np.maximum(i, j)[keep], sim[keep]


def bucket_pairs(
    band: int, members: Sequence[tuple[Any, np.ndarray]], spec: MinHashSpec
) -> list[tuple[Any, Any, float]]:
    """Pairs (id_a, id_b, similarity), id_a < id_b, of one band bucket (members: (id, signature))."""
    if len(members) < 2:
        return []
    sigs = np.stack([np.asarray(s, dtype=np.uint32) for _, s in members])
    i, j = np.triu_indices(len(members), k=1)
    a, b, sim = _kept(sigs, band, spec, i, j)
    pairs = [(members[x][0], members[y][0], float(s)) for x, y, s in zip(a, b, sim, strict=True)]
    return sorted((x, y, s) if x < y else (y, x, s) for x, y, s in pairs)


def near_pairs(sigs: np.ndarray, spec: MinHashSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i, j, similarity), i < j, of (n, permutations) signatures found by the bands, in-process."""
    sigs = np.ascontiguousarray(sigs, dtype=np.uint32)
    parts: list[tuple[np.ndarray, ...]] = [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))]
    for band in range(spec.bands):
        rows = np.ascontiguousarray(sigs[:, band * spec.rows : (band + 1) * spec.rows])
        keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * spec.rows))).reshape(-1)
        _, inverse = np.unique(keys, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        for p, q in equal_runs(inverse[order]):
            parts.append(_kept(sigs, band, spec, order[p], order[q]))
    i, j, s = (np.concatenate(x) for x in zip(*parts, strict=True))
    order = np.lexsort((j, i))
    return i[order], j[order], s[order]
