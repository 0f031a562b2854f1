from collections import defaultdict

import numpy as np
import pytest

from lvm_data.curation.minhash import (
    MinHashSpec,
    band_keys,
    bucket_pairs,
    digest,
    near_pairs,
    shingles,
    signature,
    similarity,
)


def jaccard(a: np.ndarray, b: np.ndarray, n: int) -> float:
    x, y = set(shingles(a, n).tolist()), set(shingles(b, n).tolist())
    return len(x & y) / len(x | y)


def sentences(count: int, edits: int, seed: int = 0) -> list[np.ndarray]:
    """`count` random 256-token sentences, then a copy of each of the first half with `edits` codes changed."""
    rng = np.random.default_rng(seed)
    base = [rng.integers(0, 8192, 256).astype(np.uint16) for _ in range(count)]
    copies = []
    for tokens in base[: count // 2]:
        copy = tokens.copy()
        copy[rng.choice(256, edits, replace=False)] = rng.integers(0, 8192, edits)
        copies.append(copy)
    return base + copies


def test_shingles_pack_n_codes_exactly():
    tokens = np.array([1, 2, 3, 1, 2, 3], np.uint16)
    assert sorted(shingles(tokens, 3).tolist()) == sorted(
        {1 | 2 << 16 | 3 << 32, 2 | 3 << 16 | 1 << 32, 3 | 1 << 16 | 2 << 32}
    )
    assert len(shingles(np.array([5], np.uint16), 4)) == 1


def test_signature_estimates_jaccard_and_is_deterministic():
    spec = MinHashSpec(permutations=256, bands=32)
    a, b = sentences(2, 20, seed=3)[0], sentences(2, 20, seed=3)[2]
    assert np.array_equal(signature(a, spec), signature(a.copy(), spec))
    assert abs(similarity(signature(a, spec), signature(b, spec)) - jaccard(a, b, 4)) < 0.08
    assert similarity(signature(a, spec), signature(a, spec)) == 1.0
    assert not np.array_equal(signature(a, spec), signature(a, MinHashSpec(seed=1)))


def test_near_pairs_match_the_bucket_path_and_find_the_close_copies():
    spec = MinHashSpec(threshold=0.7)
    tokens = sentences(60, 6)
    sigs = np.stack([signature(t, spec) for t in tokens])
    i, j, sim = near_pairs(sigs, spec)
    found = set(zip(i.tolist(), j.tolist(), strict=True))
    assert found == {(k, 60 + k) for k in range(30)}  # every copy, nothing else
    assert sim.min() >= 0.7
    buckets = defaultdict(list)
    for k, sig in enumerate(sigs):
        for band, key in band_keys(sig, spec):
            buckets[(band, key)].append((k, sig))
    by_bucket = [(a, b) for (band, _), members in buckets.items() for a, b, _ in bucket_pairs(band, members, spec)]
    assert sorted(by_bucket) == sorted(found)  # each pair once, in its first shared band


def test_digest_and_spec_checks():
    tokens = np.arange(10, dtype=np.uint16)
    assert digest(tokens) == digest(tokens.copy()) != digest(tokens[::-1])
    with pytest.raises(ValueError, match="multiple of bands"):
        MinHashSpec(permutations=100, bands=32)
    with pytest.raises(ValueError, match="ngram"):
        MinHashSpec(ngram=5)
    assert MinHashSpec().candidate_probability(0.8) > 0.99 > MinHashSpec().candidate_probability(0.3)
