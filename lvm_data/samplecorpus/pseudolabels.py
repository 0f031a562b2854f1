"""Annotations derived from a photo for the sample corpus: segmentation pseudo-labels and edge maps.

They are honest stand-ins for a labelled dataset: computed by documented algorithms from the real
photo, deterministic (no randomness at all), at the photo's own size so they pair pixel for pixel.

- `superpixel_labels`: scikit-image SLIC superpixels (k-means in colour + position) as class ids
  1..N (N <= 254, so every id has its own distinct colour in palette v1). Computed on a copy whose
  longest side is at most `WORK_SIDE` pixels (SLIC's cost grows with pixels), then scaled back
  nearest-neighbour. Colour photos are clustered in CIELAB, gray ones on their intensity.
- `edge_map`: OpenCV Canny edges (lvm_data.media.derive.canny_edges, the same as the `derived`
  template's edges task), 255 on edges, 0 elsewhere.

Both return (H, W) uint8 arrays; `png` encodes them as 8-bit gray PNGs, which the annotation
readers take as class ids (segmentation) or edge strength (edges).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from lvm_data.media.derive import canny_edges

SUPERPIXELS = 48  # SLIC's target count; the result stays well below 254 ids
WORK_SIDE = 512
COMPACTNESS_COLOR = 10.0  # SLIC's colour/space balance in CIELAB units (skimage's default)
COMPACTNESS_GRAY = 0.3  # the same balance for intensities in [0, 1]
MAX_ID = 254  # palette v1: ids 1..254 are the distinct colours, 255 is the white "void" label


def is_gray(rgb: np.ndarray) -> bool:
    """Whether an (H, W, 3) image has three equal channels."""
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def superpixel_labels(rgb: np.ndarray, segments: int = SUPERPIXELS) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 SLIC superpixel ids, 1..N with N <= 254."""
    from skimage.segmentation import slic

    height, width = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(height, width))
    small = (
        rgb
        if scale == 1.0
        else cv2.resize(
            rgb, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
    )
    if is_gray(small):
        labels = slic(
            small[..., 0].astype(np.float64) / 255.0,
            n_segments=segments,
            compactness=COMPACTNESS_GRAY,
            channel_axis=None,
            start_label=1,
        )
    else:
        labels = slic(small, n_segments=segments, compactness=COMPACTNESS_COLOR, start_label=1)
    if int(labels.max()) > MAX_ID:
        raise ValueError(
            f"SLIC made {int(labels.max())} superpixels; at most {MAX_ID} fit palette v1's "
            "distinct colours: lower `segments`"
        )
    if labels.shape != (height, width):
        labels = cv2.resize(labels.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    return labels.astype(np.uint8)


def edge_map(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 Canny edges: 255 on an edge, 0 elsewhere."""
    return np.ascontiguousarray(canny_edges(rgb)[..., 0])


def png(array: np.ndarray) -> bytes:
    """(H, W) uint8 -> 8-bit gray PNG, (H, W, 3) uint8 -> RGB PNG (the same bytes for the same array)."""
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"png takes (H, W) or (H, W, 3) uint8, got {array.dtype} {array.shape}")
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(out, format="PNG")
    return out.getvalue()
