"""Raw annotation arrays -> RGB images at the tokenizer's size, placed exactly where their image lands.

Every renderer takes the raw annotation (read by lvm_data.media.annotation_files) and a `Fit` (the geometry of
the job's resize policy for the annotation's original size; for an annotation smaller or larger than its
image, the image's placement: lvm_data.media.annotation_decoders.annotation_fit) and returns (size, size, 3)
uint8 RGB.

- segmentation: class ids -> colours of the versioned palette (lvm_data.media.palette); ids are
  resized nearest-neighbour before colouring, so no blended colours and no invented classes.
- depth: invalid values (NaN, inf, <= 0) are dropped, the valid ones area-averaged to the output
  size, shown as inverse depth (`display: inverse`, near = bright: the MiDaS convention; a
  disparity file is already inverse) or as depth (`display: linear`, near = dark), normalised per
  image between the 1st and 99th percentile of valid values (a flat map takes the colormap's middle)
  and coloured with a matplotlib colormap (default `inferno`). Invalid pixels are black. A map with no valid value is a
  bad_annotation.
- normals: xyz in [-1, 1] -> RGB = (n + 1) / 2 * 255 (x -> R, y -> G, z -> B, no axis flips);
  invalid (NaN or zero-length) normals are black.
- edges: an edge strength map in [0, 1] -> gray RGB (white edges on black).
- pose: COCO 17-keypoint people drawn OpenPose-style (18 joints with the neck as the shoulders'
  midpoint, 17 coloured limbs) on black or over the image.
- boxes: rectangles coloured by class id through the palette, on black or over the image.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from lvm_data.media.geometry import Fit, fit_array, masked_area, nearest
from lvm_data.media.palette import DEFAULT_VERSION, ENTRIES, load_palette
from lvm_data.outcomes import ItemError, Reason

DEFAULT_COLORMAP = "inferno"
DEPTH_DISPLAYS = ("inverse", "linear")
DEPTH_ENCODINGS = ("depth", "disparity")
PERCENTILES = (1.0, 99.0)

# OpenPose's 18-joint order, as indices into COCO's 17 keypoints (None: the neck, made from the shoulders).
# OpenPose: 0 nose, 1 neck, 2-4 right shoulder/elbow/wrist, 5-7 left, 8-10 right hip/knee/ankle,
# 11-13 left, 14 right eye, 15 left eye, 16 right ear, 17 left ear.
OPENPOSE_FROM_COCO = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
OPENPOSE_LIMBS = (
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
)
# OpenPose's colour wheel: 18 hues from red through green and blue to magenta, one per joint/limb.
OPENPOSE_COLORS = (
    (255, 0, 0),
    (255, 85, 0),
    (255, 170, 0),
    (255, 255, 0),
    (170, 255, 0),
    (85, 255, 0),
    (0, 255, 0),
    (0, 255, 85),
    (0, 255, 170),
    (0, 255, 255),
    (0, 170, 255),
    (0, 85, 255),
    (0, 0, 255),
    (85, 0, 255),
    (170, 0, 255),
    (255, 0, 255),
    (255, 0, 170),
    (255, 0, 85),
)


def render_segmentation(
    ids: np.ndarray, fit: Fit, palette_version: str = DEFAULT_VERSION, name: str = ""
) -> np.ndarray:
    """(H, W) integer class ids -> palette colours, resized nearest-neighbour."""
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= ENTRIES):
        raise ItemError(
            Reason.BAD_ANNOTATION,
            f"{name}: class ids must be in 0..{ENTRIES - 1}, got {int(ids.min())}..{int(ids.max())}",
        )
    placed = fit_array(ids, fit, nearest, fill=0)
    return load_palette(palette_version)[placed]


def render_color_mask(rgb: np.ndarray, fit: Fit) -> np.ndarray:
    """An already colour-coded mask (RGB): resized nearest-neighbour, colours kept."""
    return np.ascontiguousarray(fit_array(rgb[..., :3].astype(np.uint8), fit, nearest, fill=0))


@dataclass(frozen=True)
class DepthStyle:
    """How a depth map is shown: what the file holds, which way round, colours, normalisation range."""

    encoding: str = "depth"  # depth | disparity
    display: str = "inverse"  # inverse (near bright) | linear (near dark)
    colormap: str = DEFAULT_COLORMAP
    percentiles: tuple[float, float] = PERCENTILES

    def __post_init__(self):
        if self.encoding not in DEPTH_ENCODINGS or self.display not in DEPTH_DISPLAYS:
            raise ValueError(f"depth encoding must be one of {DEPTH_ENCODINGS} and display one of {DEPTH_DISPLAYS}")


def render_depth(depth: np.ndarray, fit: Fit, style: DepthStyle = DepthStyle(), name: str = "") -> np.ndarray:
    """(H, W) float depth or disparity, NaN where invalid -> colour-mapped RGB (see module docstring)."""
    valid = np.isfinite(depth) & (depth > 0)
    if not valid.any():
        raise ItemError(Reason.BAD_ANNOTATION, f"{name}: depth map has no valid (finite, > 0) value")
    values = np.where(valid, depth, 1.0)
    values = 1.0 / values if (style.display == "inverse") != (style.encoding == "disparity") else values
    resampled, ok = fit_array(np.stack([values, valid], axis=-1), fit, _masked_area_pair, fill=0).transpose(2, 0, 1)
    ok = ok > 0.5
    if not ok.any():
        raise ItemError(Reason.BAD_ANNOTATION, f"{name}: no valid depth is left inside the image after resizing")
    lo, hi = np.percentile(resampled[ok], style.percentiles)
    if hi - lo > 1e-6 * max(abs(hi), abs(lo)):
        scaled = np.clip((resampled - lo) / (hi - lo), 0.0, 1.0)
    else:  # flat depth (resampling noise aside): the middle of the colormap
        scaled = np.full_like(resampled, 0.5)
    rgb = colormap_lut(style.colormap)[np.round(scaled * 255).astype(np.int64)]
    rgb[~ok] = 0
    return rgb


def _masked_area_pair(stacked: np.ndarray, width: int, height: int) -> np.ndarray:
    values, ok = masked_area(stacked[..., 0], stacked[..., 1] > 0.5, width, height)
    return np.stack([values, ok.astype(np.float64)], axis=-1)


@cache
def colormap_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 lookup table of a matplotlib colormap ('gray' included)."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError as err:
        raise ValueError(
            f"colormap {name!r} is not a matplotlib colormap (e.g. inferno, magma, viridis, gray)"
        ) from err
    lut = np.floor(cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255.0 + 0.5).astype(np.uint8)
    lut.flags.writeable = False
    return lut


def render_normals(normals: np.ndarray, fit: Fit, encoded: bool = False) -> np.ndarray:
    """Float xyz normals in [-1, 1] (or an RGB-encoded normal image) -> RGB at the output size."""
    if encoded:
        return np.ascontiguousarray(fit_array(normals, fit, _area, fill=0))
    length = np.linalg.norm(np.nan_to_num(normals), axis=2)
    valid = np.isfinite(normals).all(axis=2) & (length > 1e-6)
    unit = np.where(valid[..., None], np.nan_to_num(normals) / np.maximum(length, 1e-6)[..., None], 0.0)
    channels = [masked_area(unit[..., c], valid, fit.scaled_w, fit.scaled_h) for c in range(3)]
    xyz = np.stack([c[0] for c in channels], axis=-1)
    ok = channels[0][1]
    xyz = xyz / np.maximum(np.linalg.norm(xyz, axis=2), 1e-6)[..., None]
    rgb = np.floor((np.clip(xyz, -1.0, 1.0) + 1.0) * 127.5 + 0.5).astype(np.uint8)
    rgb[~ok] = 0
    return np.ascontiguousarray(fit.place(rgb, fill=0))


def render_edges(strength: np.ndarray, fit: Fit) -> np.ndarray:
    """(H, W) edge strength in [0, 1] -> white-on-black RGB (area-averaged when shrinking)."""
    gray = np.floor(np.clip(fit_array(strength.astype(np.float32), fit, _area, fill=0), 0, 1) * 255 + 0.5)
    return np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)


def _area(array: np.ndarray, width: int, height: int) -> np.ndarray:
    interpolation = cv2.INTER_AREA if width < array.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(array, (width, height), interpolation=interpolation)


def render_pose(people: list[np.ndarray], fit: Fit, background: np.ndarray | None = None) -> np.ndarray:
    """COCO 17-keypoint people ((17, 3): x, y, v) drawn OpenPose-style at the output size."""
    canvas = _canvas(fit, background)
    width = max(1, round(fit.size / 64))
    for person in people:
        joints = _openpose_joints(person, fit)
        for limb, (a, b) in enumerate(OPENPOSE_LIMBS):
            start, end = joints[a], joints[b]
            if start is not None and end is not None:
                cv2.line(canvas, start, end, OPENPOSE_COLORS[limb], width, cv2.LINE_AA)
        for joint, point in enumerate(joints):
            if point is not None:
                cv2.circle(canvas, point, width, OPENPOSE_COLORS[joint], -1, cv2.LINE_AA)
    return canvas


def _openpose_joints(person: np.ndarray, fit: Fit) -> list[tuple[int, int] | None]:
    """18 OpenPose joints in output pixels (fixed-point free ints), None where not labelled."""
    labelled = person[:, 2] > 0
    joints: list[tuple[int, int] | None] = []
    for coco in OPENPOSE_FROM_COCO:
        if coco is None:
            if not (labelled[5] and labelled[6]):
                joints.append(None)
                continue
            x, y = (person[5, :2] + person[6, :2]) / 2
        elif not labelled[coco]:
            joints.append(None)
            continue
        else:
            x, y = person[coco, :2]
        px, py = fit.point(float(x), float(y))
        joints.append((int(round(px)), int(round(py))))
    return joints


def render_boxes(
    boxes: list[tuple], fit: Fit, background: np.ndarray | None = None, palette_version: str = DEFAULT_VERSION
) -> np.ndarray:
    """(x0, y0, x1, y1, label) boxes as rectangles coloured by class (palette id, or a hash of a name)."""
    canvas = _canvas(fit, background)
    palette = load_palette(palette_version)
    width = max(1, round(fit.size / 128))
    for x0, y0, x1, y1, label in boxes:
        colour = palette[_class_index(label)]
        p0 = tuple(int(round(v)) for v in fit.point(x0, y0))
        p1 = tuple(int(round(v)) for v in fit.point(x1, y1))
        cv2.rectangle(canvas, p0, p1, tuple(int(c) for c in colour), width, cv2.LINE_8)  # exact class colours
    return canvas


def _class_index(label) -> int:
    """A palette index for a box label: ids 1..254 from ints, names hashed into the same range."""
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        return int(label) % 254 + 1 if int(label) not in range(1, 255) else int(label)
    return zlib.crc32(str(label).encode()) % 254 + 1


def _canvas(fit: Fit, background: np.ndarray | None) -> np.ndarray:
    if background is None:
        return np.zeros((fit.size, fit.size, 3), dtype=np.uint8)
    if background.shape != (fit.size, fit.size, 3):
        raise ValueError(f"background must be ({fit.size}, {fit.size}, 3), got {background.shape}")
    return np.array(background, dtype=np.uint8, copy=True)
