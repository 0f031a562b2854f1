"""Decoders for annotation roles, for the decode table (lvm_data.media.decode.DECODERS): read, fit, render.

Each is an `AnnotationDecoder` (lvm_data.media.contract): `(part, role, settings, image=None) -> PartFrames` with
one frame already at settings.image_size: the file read into a raw array (lvm_data.media.annotation_files), then
drawn as RGB (lvm_data.media.annotation_render), placed by the job's resize policy exactly where the item's image
lands (label maps nearest-neighbour).
`image` (an `ImageGrid`: the item's image file and its original size, when the item has one) is what
the annotation must match (`annotation_fit`):

- the same size: placed like the image;
- the same aspect ratio within `ASPECT_TOLERANCE` (1 %), or within one pixel of it (the rounding of a
  downscaled odd size), at any scale (NYU and KITTI depth are the image's size; half- and quarter-
  resolution masks; ScanNet's 640x480 depth for 1296x968 colour is 0.4 % off): stretched onto the
  image's pixel grid, then placed like the image (so each annotation pixel covers the same image area);
- anything else (a transposed or rotated map, another image's annotation): `bad_annotation`, naming
  both files and both sizes. Pose and box coordinates are checked by the frame size the JSON states.
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

import dataclasses
from typing import Any

import numpy as np
from PIL import Image

from lvm_data.items import Frame, Part
from lvm_data.media.annotation_files import (
    Shapes,
    read_boxes,
    read_depth,
    read_gray,
    read_keypoints,
    read_label_map,
    read_normals,
)
from lvm_data.media.annotation_render import (
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
from lvm_data.media.contract import AnnotationDecoder, DecodeSettings, ImageGrid, PartFrames, read_part
from lvm_data.media.geometry import Fit
from lvm_data.media.image import decode_image
from lvm_data.media.palette import DEFAULT_VERSION
from lvm_data.media.parts import AnnotationPart
from lvm_data.media.resize import resize
from lvm_data.outcomes import ItemError, Reason

KINDS = ("depth", "segmentation", "normals", "edges", "pose", "boxes", "target")
ASPECT_TOLERANCE = 0.01  # an annotation's aspect ratio may differ from its image's by this fraction


def shapes_agree(height: int, width: int, image: ImageGrid) -> bool:
    """Whether an annotation of (height, width) is a uniform scale of the image (see the module docstring)."""
    cross = abs(height * image.width - width * image.height)  # 0 for the same aspect ratio
    one_pixel = max(image.height, image.width)  # height (or width) off by one from the image's aspect
    return cross <= max(ASPECT_TOLERANCE * width * image.height, one_pixel)


def annotation_fit(uri: str, height: int, width: int, settings: DecodeSettings, image: ImageGrid | None = None) -> Fit:
    """Where an annotation of (height, width) lands: its own fit without an image, else the image's placement
    (stretched onto the image's grid when the sizes differ within the tolerance); bad_annotation beyond it."""
    if image is None or (height, width) == (image.height, image.width):
        return Fit.of(height, width, settings.image_size, settings.resize)
    if not shapes_agree(height, width, image):
        off = abs(height * image.width - width * image.height) / (width * image.height)
        raise ItemError(
            Reason.BAD_ANNOTATION,
            (
                f"{uri}: annotation is {width}x{height} (width x height) but its image {image.uri} is "
                f"{image.width}x{image.height}; the aspect ratios differ by {100 * off:.1f} % (allowed: "
                f"{100 * ASPECT_TOLERANCE:g} %), so it would be stretched onto the wrong pixels. A transposed or "
                "rotated map, or another image's annotation? Save it at the image's size or a uniform scale of it "
                "(half, quarter), or fix the pairing"
            ),
        )
    placed = Fit.of(image.height, image.width, settings.image_size, settings.resize)
    return dataclasses.replace(placed, height=height, width=width)


def _option(part: Part, name: str, default: Any = None) -> Any:
    return part.option(name, default) if isinstance(part, AnnotationPart) else default


def _one(pixels: np.ndarray, part: Part, role: str, height: int, width: int, **info) -> PartFrames:
    return PartFrames(
        [Frame(pixels=pixels, uri=part.uri, index=0, role=role)], {"width": width, "height": height, **info}
    )


def decode_depth(part: Part, role: str, settings: DecodeSettings, image: ImageGrid | None = None) -> PartFrames:
    depth = read_depth(read_part(part), part.uri)
    height, width = depth.shape  # (H, W)
    fit = annotation_fit(part.uri, height, width, settings, image)
    style = DepthStyle(
        _option(part, "encoding", "depth"),
        _option(part, "display", "inverse"),
        _option(part, "colormap", DEFAULT_COLORMAP),
        tuple(_option(part, "percentiles", PERCENTILES)),
    )
    rgb = render_depth(depth, fit, style, part.uri)
    valid = float(np.isfinite(depth).mean())
    return _one(rgb, part, role, height, width, valid_fraction=round(valid, 4))


def decode_segmentation(part: Part, role: str, settings: DecodeSettings, image: ImageGrid | None = None) -> PartFrames:
    data = read_part(part)
    ids = read_label_map(data, part.uri)
    if ids is None:  # an RGB colour mask: keep its colours, never blend them
        rgb = decode_image(data, part.uri)
        height, width = rgb.shape[:2]
        fit = annotation_fit(part.uri, height, width, settings, image)
        return _one(render_color_mask(rgb, fit), part, role, height, width, encoding="rgb")
    height, width = ids.shape  # (H, W)
    fit = annotation_fit(part.uri, height, width, settings, image)
    rgb = render_segmentation(ids, fit, _option(part, "palette", DEFAULT_VERSION), part.uri)
    return _one(rgb, part, role, height, width, encoding="ids", classes=int(np.unique(ids).size))


def decode_normals(part: Part, role: str, settings: DecodeSettings, image: ImageGrid | None = None) -> PartFrames:
    normals, encoded = read_normals(read_part(part), part.uri)
    height, width = normals.shape[:2]
    fit = annotation_fit(part.uri, height, width, settings, image)
    return _one(render_normals(normals, fit, encoded), part, role, height, width)


def decode_edges(part: Part, role: str, settings: DecodeSettings, image: ImageGrid | None = None) -> PartFrames:
    strength = read_gray(read_part(part), part.uri)
    height, width = strength.shape  # (H, W)
    fit = annotation_fit(part.uri, height, width, settings, image)
    return _one(render_edges(strength, fit), part, role, height, width)


def decode_pose(part: Part, role: str, settings: DecodeSettings, image: ImageGrid | None = None) -> PartFrames:
    shapes = read_keypoints(read_part(part), part.uri)
    fit, background = _frame_of(part, shapes, settings, image)
    return _one(render_pose(shapes.items, fit, background), part, role, fit.height, fit.width, people=len(shapes.items))


def decode_boxes(part: Part, role: str, settings: DecodeSettings, image: ImageGrid | None = None) -> PartFrames:
    shapes = read_boxes(read_part(part), part.uri, _option(part, "box_format", "xywh"))
    fit, background = _frame_of(part, shapes, settings, image)
    palette = _option(part, "palette", DEFAULT_VERSION)
    return _one(
        render_boxes(shapes.items, fit, background, palette), part, role, fit.height, fit.width, boxes=len(shapes.items)
    )


def decode_target(part: Part, role: str, settings: DecodeSettings, image: ImageGrid | None = None) -> PartFrames:
    pixels = decode_image(read_part(part), part.uri, settings.max_pixels)
    height, width = pixels.shape[:2]
    if image is not None and (height, width) != (image.height, image.width):
        annotation_fit(part.uri, height, width, settings, image)  # bad_annotation beyond the tolerance
        pixels = np.asarray(Image.fromarray(pixels).resize((image.width, image.height), Image.Resampling.BICUBIC))
    return _one(pixels, part, role, height, width)


def _frame_of(
    part: Part, shapes: Shapes, settings: DecodeSettings, image: ImageGrid | None
) -> tuple[Fit, np.ndarray | None]:
    """The coordinate frame of keypoints/boxes (the size the JSON states, else the `width`/`height` options,
    else the image's) and, with `overlay`, the image as background."""
    companion = getattr(part, "image", None)
    overlay = bool(_option(part, "overlay", False))
    pixels = None
    stated = (shapes.height or _option(part, "height"), shapes.width or _option(part, "width"))
    if companion is not None and (overlay or (image is None and not all(stated))):
        pixels = decode_image(read_part(companion), companion.uri, settings.max_pixels)
        if image is None:
            image = ImageGrid(companion.uri, *pixels.shape[:2])
    height = stated[0] or (image.height if image is not None else None)
    width = stated[1] or (image.width if image is not None else None)
    if not height or not width:
        raise ItemError(
            Reason.BAD_ANNOTATION,
            f"{part.uri}: the JSON does not give the image's width and "
            "height and the item has no image; add them to the JSON or pair it with its image",
        )
    fit = annotation_fit(part.uri, int(height), int(width), settings, image)
    if not overlay:
        return fit, None
    if pixels is None:
        raise ItemError(Reason.UNPAIRED, f"{part.uri}: overlay needs the item's image, which is missing")
    return fit, resize(pixels, settings.image_size, settings.resize)


DECODERS: dict[str, AnnotationDecoder] = {
    "depth": decode_depth,
    "segmentation": decode_segmentation,
    "normals": decode_normals,
    "edges": decode_edges,
    "pose": decode_pose,
    "boxes": decode_boxes,
    "target": decode_target,
}
