"""The decoder contract: what a role's decoder gets, what it returns, and how it reads its part.

A decoder is `(part, role, settings) -> PartFrames` (`PartDecoder`): `part` is the item's part for `role` (a plain
`Part`, or one of lvm_data.media.parts that carries how it is decoded), `settings` the job's `DecodeSettings`. It
returns its frames (`Frame`, role set, any size: decode_item resizes them to `settings.image_size`) and facts about
the part (`PartFrames.info`, e.g. the original size), and raises `ItemError` with a reason code on bad input. A
decoder of an annotation role (`AnnotationDecoder`) also gets `image`: the item's image file and original size
(`ImageGrid`), which the annotation must match (lvm_data.media.annotation_decoders.annotation_fit).

A decoder reads its part's bytes with `read_part`, which enforces the byte limit (`file_too_large`) and turns an
unreadable part into `read_error`. The table of role -> decoder and `decode_item`, which runs it over an item's
parts, are in lvm_data.media.decode; adding a role is one entry there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from lvm_data import storage
from lvm_data.items import DEFAULT_MAX_ITEM_BYTES, Frame, Part
from lvm_data.media.image import DEFAULT_MAX_PIXELS
from lvm_data.media.resize import POLICIES
from lvm_data.outcomes import ItemError, Reason

READ_CHUNK = 8 * 2**20  # a capped read takes the bytes in pieces of this size (no allocation of the whole limit)


@dataclass(frozen=True)
class DecodeSettings:
    """Job-level decode settings: target size, resize policy, decompression-bomb limit."""

    image_size: int = 256
    resize: str = "squash"
    max_pixels: int = DEFAULT_MAX_PIXELS
    jpeg_draft: bool = False  # large JPEGs decoded at a reduced scale (lvm_data.media.image.decode_image)
    max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES  # a part's bytes read into memory (file_too_large above it)

    def __post_init__(self):
        if self.resize not in POLICIES:
            raise ValueError(f"resize policy {self.resize!r} is not one of {', '.join(POLICIES)}")


@dataclass
class PartFrames:
    """What a decoder returns: frames at their decoded size and facts about the part (e.g. original size)."""

    frames: list[Frame]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageGrid:
    """The item's image that an annotation must match: its file and original (height, width)."""

    uri: str
    height: int
    width: int


class PartDecoder(Protocol):
    """A role's decoder: the part's frames (any size) and facts, or ItemError."""

    def __call__(self, part: Part, role: str, settings: DecodeSettings, /) -> PartFrames: ...


class AnnotationDecoder(Protocol):
    """An annotation role's decoder: as PartDecoder, placed to match the item's image when it has one."""

    def __call__(
        self, part: Part, role: str, settings: DecodeSettings, /, image: ImageGrid | None = None
    ) -> PartFrames: ...


def read_part(part: Part, max_bytes: int = DEFAULT_MAX_ITEM_BYTES) -> bytes:
    """The part's bytes: inline data, or read from its URI, at most `max_bytes` of them.

    Unreadable -> ItemError(read_error); larger than `max_bytes` -> ItemError(file_too_large), decided from the
    file's size before reading where the filesystem says it cheaply (local files), else by a read that stops
    after `max_bytes` + 1 bytes (object stores, pipes, devices): a part is never read whole beyond the limit.
    """
    if part.data is not None:
        if len(part.data) > max_bytes:
            raise _too_many_bytes(part.uri, len(part.data), max_bytes)
        return part.data
    try:
        return _read_capped(part.uri, max_bytes)
    except FileNotFoundError as err:
        raise ItemError(Reason.READ_ERROR, f"{part.uri}: file not found") from err
    except (OSError, ValueError) as err:
        raise ItemError(Reason.READ_ERROR, f"{part.uri}: cannot read ({err})") from err


def _read_capped(uri: str, max_bytes: int) -> bytes:
    size = None
    if not storage.is_remote(uri):  # a stat is free here; on an object store it would be one request more
        size = storage.size(uri)  # storage: percent-escaped local names (lvm_data.localfs) open too
        if size is not None and size > max_bytes:
            raise _too_many_bytes(uri, size, max_bytes)
    step = min(READ_CHUNK, size + 1) if size else READ_CHUNK  # a small file in one read, no 8 MiB buffer
    chunks, total = [], 0
    with storage.open_input_stream(uri) as stream:
        while chunk := stream.read(min(step, max_bytes + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise _too_many_bytes(uri, None, max_bytes)
    return b"".join(chunks)


def _too_many_bytes(uri: str, size: int | None, max_bytes: int) -> ItemError:
    has = f"{size} bytes" if size is not None else "more bytes than that"
    return ItemError(
        Reason.FILE_TOO_LARGE,
        f"{uri}: {has}, over the limit of {max_bytes} bytes (max_item_bytes); "
        "it was not read. Raise max_item_bytes in the job file to read such files",
    )
