"""Decoders for annotation roles, for the decode table (lvm_data.media.decode.DECODERS).

Each is `(part, role, settings) -> PartFrames` with one frame already at settings.image_size, placed
by the job's resize policy exactly where the item's image lands (label maps nearest-neighbour).
Render options come from `AnnotationPart.options` (defaults for a plain Part):

- depth: `encoding` depth | disparity (what the file holds), `display` inverse | linear,
  `colormap` (matplotlib name, default inferno), `percentiles` [lo, hi] (default [1, 99]);
- segmentation: `palette` version (default v1); RGB colour masks are kept as they are;
- normals, edges: no options;
- pose, boxes: `overlay` (draw over the item's image instead of black), `width`/`height` when
  the JSON does not say the image size and the item has no image; boxes: `box_format` xywh | xyxy;
- target: an already-rendered RGB annotation (any image), resized like an image.
"""

from __future__ import annotations

import numpy as np

from lvm_data.items import Frame, Part
from lvm_data.media.annotations import (
    Shapes,
    read_boxes,
    read_depth,
    read_gray,
    read_keypoints,
    read_label_map,
    read_normals,
)
from lvm_data.media.geometry import Fit
from lvm_data.media.image import decode_image
from lvm_data.media.palette import DEFAULT_VERSION
from lvm_data.media.render import (
    DEFAULT_COLORMAP,
    PERCENTILES,
    DepthStyle,
    render_boxes,
    render_color_mask,
    render_depth,
    render_edges,
    render_normals,
    render_pose,
    render_segmentation,
)
from lvm_data.media.resize import resize
from lvm_data.outcomes import ItemError, Reason

KINDS = ("depth", "segmentation", "normals", "edges", "pose", "boxes", "target")


def _api():
    from lvm_data.media import decode  # imported late: decode.py imports this module for its table

    return decode


def _option(part: Part, name: str, default=None):
    return part.option(name, default) if hasattr(part, "option") else default


def _one(pixels: np.ndarray, part: Part, role: str, height: int, width: int, **info):
    return _api().PartFrames([Frame(pixels=pixels, uri=part.uri, index=0, role=role)],
                             {"width": width, "height": height, **info})


def decode_depth(part: Part, role: str, settings):
    depth = read_depth(_api().read_part(part), part.uri)
    fit = Fit.of(*depth.shape, settings.image_size, settings.resize)
    style = DepthStyle(_option(part, "encoding", "depth"), _option(part, "display", "inverse"),
                       _option(part, "colormap", DEFAULT_COLORMAP), tuple(_option(part, "percentiles", PERCENTILES)))
    rgb = render_depth(depth, fit, style, part.uri)
    valid = float(np.isfinite(depth).mean())
    return _one(rgb, part, role, *depth.shape, valid_fraction=round(valid, 4))


def decode_segmentation(part: Part, role: str, settings):
    data = _api().read_part(part)
    ids = read_label_map(data, part.uri)
    if ids is None:  # an RGB colour mask: keep its colours, never blend them
        rgb = decode_image(data, part.uri)
        fit = Fit.of(*rgb.shape[:2], settings.image_size, settings.resize)
        return _one(render_color_mask(rgb, fit), part, role, *rgb.shape[:2], encoding="rgb")
    fit = Fit.of(*ids.shape, settings.image_size, settings.resize)
    rgb = render_segmentation(ids, fit, _option(part, "palette", DEFAULT_VERSION), part.uri)
    return _one(rgb, part, role, *ids.shape, encoding="ids", classes=int(np.unique(ids).size))


def decode_normals(part: Part, role: str, settings):
    normals, encoded = read_normals(_api().read_part(part), part.uri)
    fit = Fit.of(*normals.shape[:2], settings.image_size, settings.resize)
    return _one(render_normals(normals, fit, encoded), part, role, *normals.shape[:2])


def decode_edges(part: Part, role: str, settings):
    strength = read_gray(_api().read_part(part), part.uri)
    fit = Fit.of(*strength.shape, settings.image_size, settings.resize)
    return _one(render_edges(strength, fit), part, role, *strength.shape)


def decode_pose(part: Part, role: str, settings):
    shapes = read_keypoints(_api().read_part(part), part.uri)
    fit, background = _frame_of(part, shapes, settings)
    return _one(render_pose(shapes.items, fit, background), part, role, fit.height, fit.width,
                people=len(shapes.items))


def decode_boxes(part: Part, role: str, settings):
    shapes = read_boxes(_api().read_part(part), part.uri, _option(part, "box_format", "xywh"))
    fit, background = _frame_of(part, shapes, settings)
    palette = _option(part, "palette", DEFAULT_VERSION)
    return _one(render_boxes(shapes.items, fit, background, palette), part, role, fit.height, fit.width,
                boxes=len(shapes.items))


def decode_target(part: Part, role: str, settings):
    pixels = decode_image(_api().read_part(part), part.uri, settings.max_pixels)
    return _one(pixels, part, role, *pixels.shape[:2])


def _frame_of(part: Part, shapes: Shapes, settings) -> tuple[Fit, np.ndarray | None]:
    """The coordinate frame of keypoints/boxes (the image's size) and, with `overlay`, the image as background."""
    image = getattr(part, "image", None)
    overlay = bool(_option(part, "overlay", False))
    pixels = None
    if image is not None and (overlay or shapes.width is None or shapes.height is None):
        pixels = decode_image(_api().read_part(image), image.uri, settings.max_pixels)
    height = shapes.height or _option(part, "height") or (pixels.shape[0] if pixels is not None else None)
    width = shapes.width or _option(part, "width") or (pixels.shape[1] if pixels is not None else None)
    if not height or not width:
        raise ItemError(Reason.BAD_ANNOTATION, f"{part.uri}: the JSON does not give the image's width and "
                        "height and the item has no image; add them to the JSON or pair it with its image")
    fit = Fit.of(int(height), int(width), settings.image_size, settings.resize)
    if overlay and pixels is None:
        raise ItemError(Reason.UNPAIRED, f"{part.uri}: overlay needs the item's image, which is missing")
    background = resize(pixels, settings.image_size, settings.resize) if overlay else None
    return fit, background


DECODERS = {"depth": decode_depth, "segmentation": decode_segmentation, "normals": decode_normals,
            "edges": decode_edges, "pose": decode_pose, "boxes": decode_boxes, "target": decode_target}
