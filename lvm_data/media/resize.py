"""Fit decoded frames to the tokenizer's square input.

Policies: `squash` (LVM default: bicubic to size x size, aspect ratio not kept), `center_crop`
(scale the short side to size, crop the middle), `pad` (scale the long side to size, pad black).

`resize_image` takes the Pillow image a still-image decoder holds (RGB, or L for gray) and resizes it
without a full-size numpy copy; `resize` takes a numpy frame. Both give the same pixels for the same image
(a gray image is resized as L and made RGB at the end: the three channels of an RGB resize are equal to it).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

POLICIES = ("squash", "center_crop", "pad")


def resize(image: np.ndarray, size: int, policy: str = "squash") -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8, bicubic (Pillow, antialiased when shrinking)."""
    _check_policy(policy)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(
            f"resize takes a non-empty (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}; "
            "decode it with lvm_data.media.image.decode_image"
        )
    if image.shape[:2] == (size, size):
        return np.ascontiguousarray(image)
    return resize_image(Image.fromarray(image), size, policy)


def resize_image(image: Image.Image, size: int, policy: str = "squash") -> np.ndarray:
    """A Pillow RGB or L image -> (size, size, 3) uint8 RGB, as `resize` does it. Pillow's bicubic resize is
    separable: its working memory is the output and one intermediate of `size` x the other side, not the input."""
    _check_policy(policy)
    if image.mode not in ("RGB", "L") or 0 in image.size:
        raise ValueError(
            f"resize_image takes a non-empty RGB or L Pillow image, got mode {image.mode} {image.size}; "
            "decode it with lvm_data.media.image.load_image"
        )
    width, height = image.size
    if (width, height) == (size, size):
        return _rgb(image)
    if policy == "squash":
        return _rgb(image.resize((size, size), Image.Resampling.BICUBIC))
    if policy == "center_crop":
        scale = size / min(height, width)
        w, h = max(size, round(width * scale)), max(size, round(height * scale))
        left, top = (w - size) // 2, (h - size) // 2
        return _rgb(image.resize((w, h), Image.Resampling.BICUBIC).crop((left, top, left + size, top + size)))
    scale = size / max(height, width)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - h) // 2, (size - w) // 2
    canvas[top : top + h, left : left + w] = _rgb(image.resize((w, h), Image.Resampling.BICUBIC))
    return canvas


def _rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)


def _check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise ValueError(f"resize policy {policy!r} is not one of {', '.join(POLICIES)}")
