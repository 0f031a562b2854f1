"""Tasks derived from plain images, so any image set yields LVM's derived pairs.

All functions take and return (S, S, 3) uint8 RGB at the tokenizer's size; randomness comes only
from the `np.random.Generator` passed in (seeded by the caller from job seed and item key).

- colorization: the input is the image in gray (ITU-R BT.601 luma, repeated on 3 channels);
- inpainting: the input is the image with black holes: `lvm` (LVM's mix, the default: with probability
  0.3 one black square, side U[0.1, 0.5) of the image, anywhere; else a grid of 8 x 8 cells, 32 px at
  256, each hidden with probability 1 - r, r ~ U(0, 1) drawn per image: hidden share mean 0.38, 5th-95th
  percentile about 0.02-0.94, as github.com/ytongbai/LVM tokenize_examples/tokenize_inpainting_dataset_muse.py
  `PairedImageDataset.__getitem__` draws them), `box` (1 to `max_boxes` rectangles, each side 1/8 to 1/2 of
  the image) or `patches` (a grid of `patch` x `patch` cells, each hidden with probability `ratio`, as in
  masked image modelling);
- edges: Canny edges (OpenCV, on the luma after a 3x3 Gaussian blur) as white on black; thresholds
  `low`/`high`, or automatic from the median luma (0.66x and 1.33x) when not given.
"""

from __future__ import annotations

import cv2
import numpy as np

MASKS = ("lvm", "box", "patches")
LVM_HOLE_SHARE = 0.3  # LVM: hole_mask_ratio, the share of images that get one square hole
LVM_CELLS = 8  # LVM: patch_size 32 on 256x256 images


def grayscale(image: np.ndarray) -> np.ndarray:
    """RGB -> gray RGB (three equal channels)."""
    luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.repeat(luma[..., None], 3, axis=2)


def box_mask(size: int, rng: np.random.Generator, max_boxes: int = 3) -> np.ndarray:
    """(size, size) bool, True = hidden: 1..max_boxes rectangles with sides in [size/8, size/2]."""
    mask = np.zeros((size, size), dtype=bool)
    lo, hi = max(1, size // 8), max(2, size // 2)
    for _ in range(int(rng.integers(1, max_boxes + 1))):
        h, w = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
        top, left = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
        mask[top : top + h, left : left + w] = True
    return mask


def patch_mask(size: int, rng: np.random.Generator, patch: int = 16, ratio: float = 0.5) -> np.ndarray:
    """(size, size) bool: grid cells of `patch` pixels hidden with probability `ratio` (at least one)."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"inpainting ratio must be between 0 and 1, got {ratio}")
    cells = -(-size // patch)
    hidden = rng.random((cells, cells)) < ratio
    if not hidden.any():
        hidden[int(rng.integers(cells)), int(rng.integers(cells))] = True
    return np.kron(hidden, np.ones((patch, patch), dtype=bool))[:size, :size]


def lvm_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size) bool, True = hidden: LVM's square hole or cell grid (see module docstring)."""
    mask = np.zeros((size, size), dtype=bool)
    if rng.random() < LVM_HOLE_SHARE:
        side = int(rng.integers(max(1, int(0.1 * size)), max(2, int(0.5 * size))))
        top, left = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        mask[top : top + side, left : left + side] = True
        return mask
    kept = rng.random()  # LVM keeps a cell where a uniform draw is below this per-image ratio
    cell = -(-size // LVM_CELLS)
    hidden = rng.random((LVM_CELLS, LVM_CELLS)) >= kept
    return np.kron(hidden, np.ones((cell, cell), dtype=bool))[:size, :size]


def inpaint_input(
    image: np.ndarray,
    rng: np.random.Generator,
    mask: str = "lvm",
    *,
    max_boxes: int = 3,
    patch: int = 16,
    ratio: float = 0.5,
) -> np.ndarray:
    """The image with black holes (see module docstring)."""
    if mask not in MASKS:
        raise ValueError(f"inpainting mask {mask!r} is not one of {', '.join(MASKS)}")
    size = image.shape[0]
    if mask == "lvm":
        hidden = lvm_mask(size, rng)
    else:
        hidden = box_mask(size, rng, max_boxes) if mask == "box" else patch_mask(size, rng, patch, ratio)
    out = image.copy()
    out[hidden] = 0
    return out


def canny_edges(image: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """White-on-black Canny edges of an RGB image, as RGB."""
    luma = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (3, 3), 0)
    if low is None or high is None:
        median = float(np.median(luma))
        low, high = max(0.0, 0.66 * median), min(255.0, 1.33 * median) or 255.0
    edges = cv2.Canny(luma, float(low), float(high))
    return np.repeat(edges[..., None], 3, axis=2)
