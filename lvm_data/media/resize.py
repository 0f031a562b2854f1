"""Fit decoded frames to the tokenizer's square input.

Policies: `squash` (LVM default: bicubic to size x size, aspect ratio not kept), `center_crop`
(scale the short side to size, crop the middle), `pad` (scale the long side to size, pad black).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

POLICIES = ("squash", "center_crop", "pad")


def resize(image: np.ndarray, size: int, policy: str = "squash") -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8, bicubic (Pillow, antialiased when shrinking)."""
    if policy not in POLICIES:
        raise ValueError(f"resize policy {policy!r} is not one of {', '.join(POLICIES)}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(f"resize takes a non-empty (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}; "
                         "decode it with lvm_data.media.image.decode_image")
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return np.ascontiguousarray(image)
    pil = Image.fromarray(image)
    if policy == "squash":
        return np.asarray(pil.resize((size, size), Image.BICUBIC))
    if policy == "center_crop":
        scale = size / min(height, width)
        w, h = max(size, round(width * scale)), max(size, round(height * scale))
        left, top = (w - size) // 2, (h - size) // 2
        return np.asarray(pil.resize((w, h), Image.BICUBIC).crop((left, top, left + size, top + size)))
    scale = size / max(height, width)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - h) // 2, (size - w) // 2
    canvas[top:top + h, left:left + w] = np.asarray(pil.resize((w, h), Image.BICUBIC))
    return canvas
