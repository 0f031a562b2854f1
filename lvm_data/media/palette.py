"""The segmentation palette: class id -> RGB, fixed and versioned, shipped as data.

`lvm_data/media/data/segmentation_palette_v1.png` is a 256x256 RGB image whose pixel (row r, col c)
is the colour of class id r * 256 + c, so 8-bit and 16-bit label maps share one palette. Version 1:

- id 0 is black (background in most datasets) and id 255 is white (the usual "void/ignore" label);
- ids 1..254 are chosen greedily to be as far apart as possible in CIELAB (farthest-point order
  over a 16-level RGB grid, first pick the colour farthest from black and white), so the classes
  of ordinary datasets (VOC 21, ADE20K 150, COCO-stuff 182) stay distinguishable after VQGAN
  tokenization;
- ids 256..65535 are hash colours (blake2b of the id), never pure black.

A new palette is a new version (a new file); version 1 never changes, because the colours are part
of what the model learns. `build_palette_v1()` regenerates the file exactly (a test checks it).
"""

from __future__ import annotations

import hashlib
import io
from functools import cache
from importlib import resources

import numpy as np
from PIL import Image

VERSIONS = ("v1",)
DEFAULT_VERSION = "v1"
ENTRIES = 65536


@cache
def load_palette(version: str = DEFAULT_VERSION) -> np.ndarray:
    """(65536, 3) uint8 palette of `version` (read-only array)."""
    if version not in VERSIONS:
        raise ValueError(f"segmentation palette {version!r} is not known; choose one of {', '.join(VERSIONS)}")
    data = (resources.files("lvm_data.media") / "data" / f"segmentation_palette_{version}.png").read_bytes()
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)
    palette = pixels.reshape(ENTRIES, 3)
    palette.flags.writeable = False
    return palette


def build_palette_v1() -> np.ndarray:
    """Regenerate palette v1 (see the module docstring for the rules)."""
    palette = np.zeros((ENTRIES, 3), dtype=np.uint8)
    palette[255] = 255
    levels = np.arange(16, dtype=np.float64) * 17.0  # 0, 17, ..., 255
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    lab = srgb_to_lab(grid)
    nearest = np.minimum(
        _distance(lab, srgb_to_lab(np.zeros((1, 3)))), _distance(lab, srgb_to_lab(np.full((1, 3), 255.0)))
    )
    for class_id in range(1, 255):
        pick = int(np.argmax(nearest))  # lowest index wins ties: deterministic
        palette[class_id] = grid[pick].astype(np.uint8)
        nearest = np.minimum(nearest, _distance(lab, lab[pick : pick + 1]))
    for class_id in range(256, ENTRIES):
        digest = hashlib.blake2b(class_id.to_bytes(4, "little"), digest_size=3).digest()
        palette[class_id] = np.frombuffer(digest, dtype=np.uint8) | np.uint8(16)  # never black
    return palette


def palette_png(palette: np.ndarray) -> bytes:
    """The palette as the shipped PNG (256x256 RGB)."""
    out = io.BytesIO()
    Image.fromarray(palette.reshape(256, 256, 3)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) sRGB 0..255 -> CIELAB (D65), float64."""
    c = rgb / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    matrix = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = linear @ matrix.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def _distance(lab: np.ndarray, point: np.ndarray) -> np.ndarray:
    return np.sqrt(((lab - point) ** 2).sum(axis=1))
