"""The geometry of `lvm_data.media.resize` policies, for arrays that must not be resampled bicubically.

Label maps (segmentation ids), depth values and drawn annotations (keypoints, boxes) must land on
the same pixels as their image, which is resized by `resize(image, size, policy)`. `Fit` computes
that placement once (same rounding as resize.py); `fit_array` applies it with any resampler, and
`Fit.point` maps original coordinates to output pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from lvm_data.media.resize import POLICIES


@dataclass(frozen=True)
class Fit:
    """Original (height, width) -> a (size, size) output: scale to (scaled_w, scaled_h), then crop or pad."""

    height: int
    width: int
    size: int
    scaled_w: int
    scaled_h: int
    crop_x: int = 0  # columns dropped on the left of the scaled image (center_crop)
    crop_y: int = 0
    pad_x: int = 0  # columns of padding on the left of the output (pad)
    pad_y: int = 0

    @classmethod
    def of(cls, height: int, width: int, size: int, policy: str = "squash") -> Fit:
        if policy not in POLICIES:
            raise ValueError(f"resize policy {policy!r} is not one of {', '.join(POLICIES)}")
        if policy == "squash" or (height, width) == (size, size):
            return cls(height, width, size, size, size)
        if policy == "center_crop":
            scale = size / min(height, width)
            w, h = max(size, round(width * scale)), max(size, round(height * scale))
            return cls(height, width, size, w, h, crop_x=(w - size) // 2, crop_y=(h - size) // 2)
        scale = size / max(height, width)
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
        return cls(height, width, size, w, h, pad_x=(size - w) // 2, pad_y=(size - h) // 2)

    @property
    def scale_x(self) -> float:
        return self.scaled_w / self.width

    @property
    def scale_y(self) -> float:
        return self.scaled_h / self.height

    def point(self, x: float, y: float) -> tuple[float, float]:
        """Original pixel coordinates -> output pixel coordinates (may fall outside after a crop)."""
        return x * self.scale_x - self.crop_x + self.pad_x, y * self.scale_y - self.crop_y + self.pad_y

    def place(self, scaled: np.ndarray, fill: float | int = 0) -> np.ndarray:
        """A (scaled_h, scaled_w, ...) array cropped or padded to (size, size, ...)."""
        if self.scaled_w >= self.size and self.scaled_h >= self.size:  # squash or center_crop
            return scaled[self.crop_y : self.crop_y + self.size, self.crop_x : self.crop_x + self.size]
        out = np.full((self.size, self.size, *scaled.shape[2:]), fill, dtype=scaled.dtype)
        out[self.pad_y : self.pad_y + self.scaled_h, self.pad_x : self.pad_x + self.scaled_w] = scaled
        return out


def nearest(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resample of any dtype (label ids stay ids: no blending)."""
    rows = np.minimum(((np.arange(height) + 0.5) * array.shape[0] / height).astype(np.int64), array.shape[0] - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * array.shape[1] / width).astype(np.int64), array.shape[1] - 1)
    return array[rows][:, cols]


def masked_area(values: np.ndarray, valid: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Area-average of float `values` over `valid` pixels only: (resampled values, resampled valid mask)."""
    weights = valid.astype(np.float32)
    sums = cv2.resize(np.where(valid, values, 0).astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    counts = cv2.resize(weights, (width, height), interpolation=cv2.INTER_AREA)
    ok = counts > 1e-6
    return np.where(ok, sums / np.maximum(counts, 1e-6), 0.0), ok


def fit_array(
    array: np.ndarray, fit: Fit, resample: Callable[[np.ndarray, int, int], np.ndarray] = nearest, fill: float | int = 0
) -> np.ndarray:
    """Resample `array` (H, W, ...) to the fit's scaled size, then crop or pad to (size, size, ...)."""
    if array.shape[:2] != (fit.height, fit.width):
        raise ValueError(f"array is {array.shape[:2]}, the fit was made for {(fit.height, fit.width)}")
    scaled = array if (fit.scaled_h, fit.scaled_w) == array.shape[:2] else resample(array, fit.scaled_w, fit.scaled_h)
    return fit.place(scaled, fill)
