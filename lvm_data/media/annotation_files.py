"""Annotation files -> raw annotation arrays: label ids, depth, normals, keypoints, boxes.

Only what the file holds: placing and colouring it is lvm_data.media.annotation_render's work.

Readers raise `ItemError(bad_annotation)` naming the file when the content is not what the kind
needs, `empty_file` for zero bytes. Label maps keep their ids: palette PNGs are read as indices, not
colours; 8-bit, 16-bit and integer arrays are accepted. Depth and normals come from images
(8/16-bit PNG, float TIFF, read with OpenCV so 16 bits survive), .npy/.npz arrays and .pfm files.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from lvm_data.outcomes import ItemError, Reason

ARRAY_KEYS = ("depth", "disparity", "normals", "normal", "labels", "label", "segmentation", "arr_0")
COCO_KEYPOINTS = 17


def _bad(name: str, problem: str) -> ItemError:
    return ItemError(Reason.BAD_ANNOTATION, f"{name}: {problem}")


def _require_bytes(data: bytes, name: str) -> None:
    if not data:
        raise ItemError(Reason.EMPTY_FILE, f"{name}: file is empty")


def load_array(data: bytes, name: str) -> np.ndarray:
    """An array from .npy / .npz (first of ARRAY_KEYS present, else the only array) / .pfm bytes."""
    _require_bytes(data, name)
    try:
        if data[:2] in (b"PF", b"Pf"):
            return read_pfm(data)
        if data[:6] == b"\x93NUMPY":
            return np.load(io.BytesIO(data), allow_pickle=False)
        if data[:2] == b"PK":
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                keys = [k for k in ARRAY_KEYS if k in archive.files] or archive.files
                if len(keys) != 1 and not any(k in archive.files for k in ARRAY_KEYS):
                    raise _bad(name, f"npz holds {archive.files}; name the array one of {', '.join(ARRAY_KEYS)}")
                return archive[keys[0]]
    except ItemError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise _bad(name, f"cannot read the array: {err}") from err
    raise _bad(name, "not a .npy, .npz or .pfm array")


def is_array_file(data: bytes) -> bool:
    return data[:6] == b"\x93NUMPY" or data[:2] in (b"PK", b"PF", b"Pf")


def read_pfm(data: bytes) -> np.ndarray:
    """Portable float map (Middlebury, SceneFlow): 'PF' colour or 'Pf' gray; rows stored bottom-up."""
    header, rest = data.split(b"\n", 1)
    dims, rest = rest.split(b"\n", 1)
    scale, body = rest.split(b"\n", 1)
    width, height = (int(v) for v in dims.split())
    channels = 3 if header.strip() == b"PF" else 1
    dtype = "<f4" if float(scale) < 0 else ">f4"
    values = np.frombuffer(body, dtype=dtype, count=width * height * channels)
    shape = (height, width, 3) if channels == 3 else (height, width)
    return np.flipud(values.reshape(shape)).astype(np.float32)


def read_label_map(data: bytes, name: str) -> np.ndarray | None:
    """(H, W) int64 class ids, or None when the file is an RGB colour mask (already rendered)."""
    if is_array_file(data):
        ids = load_array(data, name)
        if ids.ndim == 3 and ids.shape[2] == 1:
            ids = ids[..., 0]
        if ids.ndim != 2 or not (np.issubdtype(ids.dtype, np.integer) or np.issubdtype(ids.dtype, np.bool_)):
            raise _bad(name, f"a label map must be a 2-D integer array, got {ids.dtype} {ids.shape}")
        return ids.astype(np.int64)
    image = _open(data, name)
    if image.mode == "P":
        return np.asarray(image, dtype=np.uint8).astype(np.int64)  # indices, never the palette colours
    if image.mode in ("L", "1", "I;16", "I;16L", "I;16B", "I;16N", "I"):
        return np.asarray(image).astype(np.int64)
    if image.mode in ("RGB", "RGBA"):
        return None
    raise _bad(name, f"label map of Pillow mode {image.mode} is not supported; save it as 8/16-bit gray or palette PNG")


def read_depth(data: bytes, name: str) -> np.ndarray:
    """(H, W) float64 depth (or disparity) with NaN where invalid: non-finite or <= 0 (0 = no measurement)."""
    values = load_array(data, name) if is_array_file(data) else _decode_unchanged(data, name)
    if values.ndim == 3:
        if values.shape[2] != 1 and not np.allclose(values[..., :1], values[..., 1:3]):
            raise _bad(name, f"depth must have one channel, got shape {values.shape}")
        values = values[..., 0]
    if values.ndim != 2 or values.dtype.kind not in "iuf":
        raise _bad(name, f"depth must be a 2-D numeric map, got {values.dtype} {values.shape}")
    depth = values.astype(np.float64)
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


def read_normals(data: bytes, name: str) -> tuple[np.ndarray, bool]:
    """(normals, encoded): float (H, W, 3) xyz in [-1, 1] from arrays (encoded False), or an RGB
    uint8 image already encoded as (n + 1) / 2 * 255 (encoded True; 16-bit PNGs are scaled to 8 bits)."""
    if is_array_file(data):
        xyz = load_array(data, name)
        if xyz.ndim != 3 or xyz.shape[2] != 3 or xyz.dtype.kind != "f":
            raise _bad(name, f"normals must be a float (H, W, 3) array, got {xyz.dtype} {xyz.shape}")
        return xyz.astype(np.float64), False
    pixels = _decode_unchanged(data, name)
    if pixels.ndim != 3 or pixels.shape[2] < 3:
        raise _bad(name, f"a normal map image must be RGB, got shape {pixels.shape}")
    pixels = pixels[..., :3]
    if pixels.dtype == np.uint16:
        pixels = np.floor(pixels / 257.0 + 0.5).astype(np.uint8)
    if pixels.dtype != np.uint8:
        raise _bad(name, f"a normal map image must be 8 or 16 bit, got {pixels.dtype}")
    return pixels, True


def read_gray(data: bytes, name: str) -> np.ndarray:
    """(H, W) float in [0, 1]: an edge or probability map from an image or an array."""
    if is_array_file(data):
        values = load_array(data, name).astype(np.float64)
        if values.ndim != 2:
            raise _bad(name, f"an edge map must be 2-D, got shape {values.shape}")
        top = 1.0 if np.nanmax(values, initial=0.0) <= 1.0 else float(np.nanmax(values))
        return np.clip(np.nan_to_num(values / top), 0.0, 1.0)
    pixels = _decode_unchanged(data, name)
    if pixels.ndim == 3:
        pixels = pixels[..., :3].max(axis=2)
    top = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(pixels.dtype, 1.0)
    return np.clip(pixels.astype(np.float64) / top, 0.0, 1.0)


def _decode_unchanged(data: bytes, name: str) -> np.ndarray:
    """Image bytes with their bit depth kept (OpenCV IMREAD_UNCHANGED), colour as RGB."""
    _require_bytes(data, name)
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise _bad(name, "not an image or array file OpenCV can read (png, tiff, exr, npy, npz, pfm)")
    if pixels.ndim == 3 and pixels.shape[2] >= 3:
        pixels = np.concatenate([pixels[..., 2::-1], pixels[..., 3:]], axis=2)  # BGR(A) -> RGB(A)
    return pixels


def _open(data: bytes, name: str) -> Image.Image:
    _require_bytes(data, name)
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        return image
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise _bad(name, f"not a readable image: {err}") from err


@dataclass(frozen=True)
class Shapes:
    """Keypoints or boxes from a JSON file, with the image size the coordinates refer to (if stated)."""

    items: list
    width: int | None = None
    height: int | None = None


def read_keypoints(data: bytes, name: str) -> Shapes:
    """COCO 17-keypoint poses: items are (17, 3) float arrays of x, y, visibility (0 = not labelled).

    Accepts a COCO file ({"annotations": [...], "images": [...]}), a list of annotations, one
    annotation ({"keypoints": [...]}), or a bare list of 51 numbers.
    """
    doc = _json(data, name)
    annotations, width, height = _annotations(doc)
    persons = []
    for ann in annotations:
        values = ann.get("keypoints") if isinstance(ann, dict) else ann
        try:
            person = np.asarray(values, dtype=np.float64).reshape(COCO_KEYPOINTS, 3)
        except (TypeError, ValueError) as err:
            raise _bad(name, f"keypoints must be {COCO_KEYPOINTS} x (x, y, v) numbers (COCO order)") from err
        persons.append(person)
    return Shapes(persons, width, height)


def read_boxes(data: bytes, name: str, box_format: str = "xywh") -> Shapes:
    """Boxes: items are (x0, y0, x1, y1, label) with label an int class id or a string.

    Accepts COCO-style annotations with "bbox" ([x, y, w, h] when box_format is xywh, the COCO
    convention; [x0, y0, x1, y1] when xyxy) and "category_id" or "label".
    """
    doc = _json(data, name)
    annotations, width, height = _annotations(doc)
    boxes = []
    for ann in annotations:
        try:
            x, y, a, b = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError) as err:
            raise _bad(name, 'each box needs "bbox": [4 numbers]') from err
        x1, y1 = (x + a, y + b) if box_format == "xywh" else (a, b)
        boxes.append((x, y, x1, y1, ann.get("category_id", ann.get("label", 0))))
    return Shapes(boxes, width, height)


def _json(data: bytes, name: str):
    _require_bytes(data, name)
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _bad(name, f"not valid JSON: {err}") from err


def _annotations(doc) -> tuple[list, int | None, int | None]:
    """(annotation list, width, height) from the accepted JSON layouts."""
    width = height = None
    if isinstance(doc, dict):
        image = doc.get("images", [{}])[0] if doc.get("images") else doc
        width, height = image.get("width"), image.get("height")
        if "annotations" in doc:
            doc = doc["annotations"]
        elif "people" in doc:
            doc = doc["people"]
        else:
            doc = [doc]
    elif isinstance(doc, list) and doc and all(isinstance(v, (int, float)) for v in doc):
        doc = [doc]
    return (doc if isinstance(doc, list) else [doc]), width, height
