"""An item's parts -> frames at the tokenizer's size, through a table of role -> decoder.

`decode_item(ref, settings)` decodes each part with the decoder registered for its role in `DECODERS` (the
contract a decoder keeps, and its types, are in lvm_data.media.contract), resizes every frame to
`settings.image_size` with the job's policy and records what each decoder reports (original sizes) in
`DecodedItem.info[role]`. The image part is decoded first: annotation decoders get its file and original size
(`ImageGrid`) and fail an annotation whose shape does not match it (lvm_data.media.annotation_decoders).
Failures raise `ItemError` with a reason code; the pipeline turns them into ledger rows.

Per-item limits (job fields): `max_item_bytes` on the bytes a part may have (checked from the file size
before reading, and by a capped read; inline bytes by their length: `file_too_large`), `max_pixels` on its
decoded size (from the header, before decoding: `too_large`); a decoder of any role (or the resize) that runs
out of memory fails its item with `out_of_memory` (decode_item: one place for every item kind). A still image
is fitted from the Pillow image (lvm_data.media.image.load_image), never from a full-size numpy copy, so its
peak is its bytes + at most 8 bytes a pixel (`item_memory_bound`).

Adding a role is one entry in `DECODERS`: a `PartDecoder` `(part, role, settings) -> PartFrames` whose
frames may have any size (decode_item resizes them) and which raises `ItemError` on bad input.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from lvm_data.items import ERROR_META, DecodedItem, Frame, ItemRef, Part
from lvm_data.media.annotation_decoders import DECODERS as ANNOTATION_DECODERS
from lvm_data.media.contract import AnnotationDecoder, DecodeSettings, ImageGrid, PartDecoder, PartFrames, read_part
from lvm_data.media.frame_folders import decode_frames_part, decode_sequence_part, decode_views_part
from lvm_data.media.image import BAND_PIXELS, load_image
from lvm_data.media.resize import resize, resize_image
from lvm_data.media.video import decode_video_part
from lvm_data.outcomes import ItemError, Reason

BYTES_PER_PIXEL = 8  # a still image's decode peak per pixel beyond its file bytes (lvm_data.media.image)


def item_memory_bound(settings: DecodeSettings) -> int:
    """Bytes one still-image item may take while it decodes: its bytes + BYTES_PER_PIXEL x max_pixels + its row
    bands' temporaries (at most 32 bytes a band pixel: a float64 band of deep grayscale and its copies)."""
    return settings.max_item_bytes + BYTES_PER_PIXEL * settings.max_pixels + 32 * BAND_PIXELS


def decode_image_part(part: Part, role: str, settings: DecodeSettings) -> PartFrames:
    """A still image (first frame of GIFs and multi-page TIFFs) as one frame, already at the tokenizer's size:
    resized from the decoded Pillow image, so no full-size numpy copy of a large image is ever made."""
    image, (width, height) = load_image(
        read_part(part, settings.max_item_bytes),
        part.uri,
        settings.max_pixels,
        settings.image_size if settings.jpeg_draft else None,
    )
    try:
        pixels = resize_image(image, settings.image_size, settings.resize)
    except MemoryError as err:
        raise ItemError(
            Reason.OUT_OF_MEMORY,
            f"{part.uri}: no memory to resize {image.size[0]}x{image.size[1]} "
            "pixels; lower decode_workers or max_pixels in the job file",
        ) from err
    return PartFrames([Frame(pixels=pixels, uri=part.uri, index=0, role=role)], {"width": width, "height": height})


DECODERS: dict[str, PartDecoder] = {
    "image": decode_image_part,
    # videos, frame folders, annotated sequences, multi-view objects, annotation kinds (issue 4)
    "video": decode_video_part,
    "frames": decode_frames_part,
    "sequence": decode_sequence_part,
    "views": decode_views_part,
    **ANNOTATION_DECODERS,
}


def decode_item(ref: ItemRef, settings: DecodeSettings) -> DecodedItem:
    """Frames of every part, in part order, each (S, S, 3) uint8 RGB with S = settings.image_size.

    Raises ItemError: the source's own failure (unreadable container member), `not_media` for an
    item without parts, `internal_error` for a role no decoder handles, `out_of_memory` for a MemoryError
    of any decoder (of every role, in this process or an isolated one) or resize, or the decoder's reason.
    """
    error = ref.meta.get(ERROR_META)
    if error:
        raise ItemError(Reason(error["reason"]), error["detail"])
    if not ref.parts:
        raise ItemError(Reason.NOT_MEDIA, f"{ref.key}: item has no media file")
    try:
        decoded = _decode_parts(ref, settings)
        frames = [fit(frame, settings) for role in ref.parts for frame in decoded[role].frames]
    except MemoryError as err:
        raise ItemError(
            Reason.OUT_OF_MEMORY,
            f"{ref.uri}: no memory to decode item {ref.key} "
            f"({err or 'MemoryError'}); lower max_pixels or decode_workers in the job file, or give "
            "the workers more memory",
        ) from err
    return DecodedItem(ref=ref, frames=frames, info={role: decoded[role].info for role in ref.parts})


def _decode_parts(ref: ItemRef, settings: DecodeSettings) -> dict[str, PartFrames]:
    """Role -> its part decoded at the decoder's size: the image first, then the others in part order."""
    decoded: dict[str, PartFrames] = {}
    grid: ImageGrid | None = None  # the item's image, which its annotations must match (annotation_fit)
    for role in sorted(ref.parts, key=lambda r: r != "image"):  # the image first, then the others in part order
        part = ref.parts[role]
        decoder = DECODERS.get(role)
        if decoder is None:
            raise ItemError(
                Reason.INTERNAL_ERROR,
                f"{part.uri}: no decoder for role {role!r}; known roles: {', '.join(sorted(DECODERS))}",
            )
        if role in ANNOTATION_DECODERS:  # its entry is an AnnotationDecoder: it gets the item's image
            decoded[role] = cast(AnnotationDecoder, decoder)(part, role, settings, image=grid)
        else:
            decoded[role] = decoder(part, role, settings)
        if role == "image":
            grid = ImageGrid(part.uri, decoded[role].info["height"], decoded[role].info["width"])
    return decoded


def fit(frame: Frame, settings: DecodeSettings) -> Frame:
    """The frame resized to the tokenizer's square input with the job's policy."""
    pixels = frame.pixels
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ItemError(
            Reason.INTERNAL_ERROR,
            f"{frame.uri}: decoder returned {pixels.dtype} {pixels.shape}, expected (H, W, 3) uint8",
        )
    frame.pixels = resize(pixels, settings.image_size, settings.resize)
    return frame
