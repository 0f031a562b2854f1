"""An item's parts -> frames at the tokenizer's size, through a table of role -> decoder.

`decode_item(ref, settings)` reads each part (inline bytes or its URI), decodes it with the decoder
registered for its role in `DECODERS`, resizes every frame to `settings.image_size` with the job's
policy and records what each decoder reports (original sizes) in `DecodedItem.info[role]`.
Failures raise `ItemError` with a reason code; the pipeline turns them into ledger rows.

Adding a role is one entry in `DECODERS`: a function `(part, role, settings) -> PartFrames` whose
frames may have any size (decode_item resizes them) and which raises `ItemError` on bad input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lvm_data import storage
from lvm_data.items import ERROR_META, DecodedItem, Frame, ItemRef, Part
from lvm_data.media.annotate import DECODERS as ANNOTATION_DECODERS
from lvm_data.media.frames import decode_frames_part, decode_sequence_part, decode_views_part
from lvm_data.media.image import DEFAULT_MAX_PIXELS, decode_image_sized
from lvm_data.media.resize import POLICIES, resize
from lvm_data.media.video import decode_video_part
from lvm_data.outcomes import ItemError, Reason


@dataclass(frozen=True)
class DecodeSettings:
    """Job-level decode settings: target size, resize policy, decompression-bomb limit."""

    image_size: int = 256
    resize: str = "squash"
    max_pixels: int = DEFAULT_MAX_PIXELS
    jpeg_draft: bool = False  # large JPEGs decoded at a reduced scale (lvm_data.media.image.decode_image)

    def __post_init__(self):
        if self.resize not in POLICIES:
            raise ValueError(f"resize policy {self.resize!r} is not one of {', '.join(POLICIES)}")


@dataclass
class PartFrames:
    """What a decoder returns: frames at their decoded size and facts about the part (e.g. original size)."""

    frames: list[Frame]
    info: dict[str, Any] = field(default_factory=dict)


PartDecoder = Callable[[Part, str, DecodeSettings], PartFrames]


def read_part(part: Part) -> bytes:
    """The part's bytes: inline data, or read from its URI. Unreadable -> ItemError(read_error)."""
    if part.data is not None:
        return part.data
    try:
        return storage.read_bytes(part.uri)
    except FileNotFoundError as err:
        raise ItemError(Reason.READ_ERROR, f"{part.uri}: file not found") from err
    except (OSError, ValueError) as err:
        raise ItemError(Reason.READ_ERROR, f"{part.uri}: cannot read ({err})") from err


def decode_image_part(part: Part, role: str, settings: DecodeSettings) -> PartFrames:
    """A still image (first frame of GIFs and multi-page TIFFs) as one frame."""
    pixels, (width, height) = decode_image_sized(read_part(part), part.uri, settings.max_pixels,
                                                 settings.image_size if settings.jpeg_draft else None)
    return PartFrames([Frame(pixels=pixels, uri=part.uri, index=0, role=role)], {"width": width, "height": height})


DECODERS: dict[str, PartDecoder] = {
    "image": decode_image_part,
    # videos, frame folders, annotated sequences, multi-view objects, annotation kinds (issue 4)
    "video": decode_video_part, "frames": decode_frames_part, "sequence": decode_sequence_part,
    "views": decode_views_part, **ANNOTATION_DECODERS,
}


def decode_item(ref: ItemRef, settings: DecodeSettings) -> DecodedItem:
    """Frames of every part, in part order, each (S, S, 3) uint8 RGB with S = settings.image_size.

    Raises ItemError: the source's own failure (unreadable container member), `not_media` for an
    item without parts, `internal_error` for a role no decoder handles, or the decoder's reason.
    """
    error = ref.meta.get(ERROR_META)
    if error:
        raise ItemError(Reason(error["reason"]), error["detail"])
    if not ref.parts:
        raise ItemError(Reason.NOT_MEDIA, f"{ref.key}: item has no media file")
    frames, info = [], {}
    for role, part in ref.parts.items():
        decoder = DECODERS.get(role)
        if decoder is None:
            raise ItemError(Reason.INTERNAL_ERROR, f"{part.uri}: no decoder for role {role!r}; "
                            f"known roles: {', '.join(sorted(DECODERS))}")
        decoded = decoder(part, role, settings)
        frames.extend(fit(frame, settings) for frame in decoded.frames)
        info[role] = decoded.info
    return DecodedItem(ref=ref, frames=frames, info=info)


def fit(frame: Frame, settings: DecodeSettings) -> Frame:
    """The frame resized to the tokenizer's square input with the job's policy."""
    pixels = frame.pixels
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ItemError(Reason.INTERNAL_ERROR, f"{frame.uri}: decoder returned {pixels.dtype} {pixels.shape}, "
                        "expected (H, W, 3) uint8")
    frame.pixels = resize(pixels, settings.image_size, settings.resize)
    return frame
