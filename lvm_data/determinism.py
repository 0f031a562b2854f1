"""Every seed and digest the project derives, on the ground floor: stable across machines, Python versions,
worker counts and scheduling.

Seeds come from (job seed, keys) by hashing, never from a global RNG; digests fingerprint a list of values (a
unit's membership, a mix's inputs). Everyone may import this module; it imports nothing of ours.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, *keys: str) -> int:
    """A 64-bit seed from the job seed and keys, stable across machines and Python versions."""
    text = "\x00".join([str(seed), *keys])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def rng_for(seed: int, *keys: str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, *keys))


def digest(values: list[str]) -> str:
    """Stable hash of a list of values (a unit's membership, stored in its commit marker to detect changed
    inputs)."""
    h = hashlib.blake2b(digest_size=16)
    for value in values:
        h.update(value.encode())
        h.update(b"\x00")
    return h.hexdigest()
