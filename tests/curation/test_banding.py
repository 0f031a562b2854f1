import itertools
from collections import defaultdict

import numpy as np
import pytest

from lvm_data.curation.banding import Banding, bucket_pairs, entries, near_pairs


def planted_hashes(n: int, seed: int = 0) -> np.ndarray:
    """n random 64-bit hashes and, for half of them, copies with 0 to 12 random bits flipped."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, np.iinfo(np.uint64).max, size=n, dtype=np.uint64, endpoint=True)
    copies = []
    for value in base[: n // 2]:
        flips = rng.choice(64, size=rng.integers(0, 13), replace=False)
        copies.append(int(value) ^ sum(1 << int(b) for b in flips))
    return np.concatenate([base, np.array(copies, dtype=np.uint64)])


def brute_force(hashes: np.ndarray, t: int) -> dict[tuple[int, int], int]:
    values = [int(h) for h in hashes]
    return {
        (i, j): (values[i] ^ values[j]).bit_count()
        for i, j in itertools.combinations(range(len(values)), 2)
        if (values[i] ^ values[j]).bit_count() <= t
    }


def bucketed(hashes: np.ndarray, t: int, banding: Banding) -> dict[tuple[int, int], int]:
    """The Beam path by hand: file every hash under its entries, then pair within each bucket."""
    buckets = defaultdict(lambda: ([], []))
    for i, value in enumerate(hashes):
        for band, bucket, probe in entries(banding, int(value)):
            buckets[(band, bucket)][probe].append((i, int(value)))
    found = {}
    for (band, _), (homes, probes) in buckets.items():
        for a, b, d in bucket_pairs(banding, band, homes, probes, t):
            assert (a, b) not in found, "a pair is reported in one bucket only"
            found[(a, b)] = d
    return found


@pytest.mark.parametrize("t", [0, 1, 3, 4, 5, 6, 8, 11])
def test_banding_finds_exactly_the_pairs_within_the_threshold(t):
    hashes = planted_hashes(400, seed=t)
    expected = brute_force(hashes, t)
    assert len(expected) > 5
    i, j, d = near_pairs(hashes, t)
    assert dict(zip(zip(i.tolist(), j.tolist(), strict=True), d.tolist(), strict=True)) == expected
    assert bucketed(hashes, t, Banding.for_distance(t)) == expected


def test_for_distance_picks_exact_bandings():
    for t in range(0, 20):
        banding = Banding.for_distance(t)
        assert banding.max_distance >= t
        assert banding.radius == (0 if t <= 4 else 1)
    assert Banding(4, 1).max_distance == 7
    assert [w for _, w in Banding(3).layout] == [22, 21, 21]


def test_a_banding_without_exact_recall_is_refused():
    with pytest.raises(ValueError, match="find distances up to 3, not 6"):
        near_pairs(planted_hashes(10), 6, Banding(4, 0))
    with pytest.raises(ValueError, match="radius"):
        Banding(4, 2)


def test_probes_meet_a_one_bit_neighbour_exactly_once():
    banding = Banding(2, 1)
    a, b = 0b1011 << 32, (0b1011 << 32) ^ (1 << 33)
    shared = {(band, bucket) for band, bucket, _ in entries(banding, a)} & {
        (band, bucket) for band, bucket, _ in entries(banding, b)
    }
    assert len(shared) == 2  # band 0 via a probe, band 1 home-home; only band 0 reports the pair
    assert bucketed(np.array([a, b], dtype=np.uint64), 1, banding) == {(0, 1): 1}


def test_many_identical_hashes_pair_within_one_bucket():
    hashes = np.array([7] * 30 + [7 ^ (1 << 60)], dtype=np.uint64)
    i, j, d = near_pairs(hashes, 1)
    assert len(i) == 31 * 30 // 2 and set(d.tolist()) == {0, 1}
