"""Content hashes of decoded frames: an exact digest of the pixels and 64-bit perceptual hashes.

- `pixel_digest(pixels)`: blake2b-128 of the frame as the tokenizer sees it (after the job's resize),
  with its shape. Two files with the same decoded pixels (a PNG and a lossless re-encode, a copy with
  stripped metadata) get the same digest; identical digests mean identical tokens.
- `phash(pixels)`: DCT hash (luma resized to 32x32, the 8x8 lowest frequencies compared with their
  median; bit 63 is the DC term). Robust to re-encoding and resizing, weaker on crops.
- `dhash(pixels)`: gradient hash (luma resized to 9x8, each pixel compared with its right neighbour).

Perceptual hashes are Python ints in [0, 2**64); arrays of them are uint64. `hamming` counts differing bits.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

HASH_BITS = 64


def pixel_digest(pixels: np.ndarray) -> str:
    """32 hex digits identifying the exact pixels (and shape) of a uint8 frame."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(pixels.shape).encode())
    h.update(np.ascontiguousarray(pixels).data)
    return h.hexdigest()


def luma(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float32 luma (BT.601)."""
    return cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY).astype(np.float32)


def _pack(bits: np.ndarray) -> int:
    """64 booleans, most significant first, as an int."""
    return int.from_bytes(np.packbits(bits.astype(np.uint8)).tobytes(), "big")


def phash(pixels: np.ndarray) -> int:
    small = cv2.resize(luma(pixels), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8].reshape(-1)  # (64,) lowest frequencies, DC first
    return _pack(low > np.median(low[1:]))


def dhash(pixels: np.ndarray) -> int:
    small = cv2.resize(luma(pixels), (9, 8), interpolation=cv2.INTER_AREA)  # (8 rows, 9 columns)
    return _pack((small[:, 1:] > small[:, :-1]).reshape(-1))


PERCEPTUAL = {"phash": phash, "dhash": dhash}


def perceptual_hash(kind: str, pixels: np.ndarray) -> int:
    try:
        return PERCEPTUAL[kind](pixels)
    except KeyError as err:
        raise ValueError(f"unknown perceptual hash {kind!r}; use one of {', '.join(PERCEPTUAL)}") from err


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def popcount(values: np.ndarray) -> np.ndarray:
    """Set bits per element of an unsigned integer array."""
    return np.bitwise_count(values)


def as_hex(value: int) -> str:
    return f"{value:016x}"
