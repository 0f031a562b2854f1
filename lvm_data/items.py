"""The data model shared by sources, media and templates (see DESIGN.md, "Data model").

ItemRef: one input unit as a source lists it (small: paths, or inline bytes for container sources).
DecodedItem: the same item after decoding, as frames at the tokenizer's image size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Part:
    """One file of an item. `data` holds the bytes inline when the source is a container (tar, Parquet)."""

    uri: str
    data: bytes | None = field(default=None, repr=False)


DEFAULT_MAX_ITEM_BYTES = 256 * 2**20  # the job's `max_item_bytes`: bytes one part may have in memory (issue 15)

ERROR_META = "error"


@dataclass
class ItemRef:
    """An input item: `key` is stable and unique within `source`; `parts` maps a role to its file.

    Roles: "image" for still images, "video", "frames" (a folder), and annotation kinds such as
    "depth", "segmentation", "normals", "edges", "pose". `meta` carries small per-item fields
    (label, caption, view index) from the source. An item the source could not read (a broken tar
    member) has `meta[ERROR_META] = {"reason": code, "detail": text, "uri": location}`: decoding
    raises that reason, so it still ends as a ledger row.
    """

    source: str
    key: str
    unit: str
    parts: dict[str, Part]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        """The item's main location, for the ledger."""
        if self.parts:
            return next(iter(self.parts.values())).uri
        return self.meta.get(ERROR_META, {}).get("uri", "")


@dataclass
class Frame:
    """One image of a sentence with its provenance. pixels: (S, S, 3) uint8 RGB."""

    pixels: np.ndarray = field(repr=False)
    uri: str
    index: int = 0  # frame index within a video or sequence; 0 for still images
    role: str = "image"


@dataclass
class DecodedItem:
    """An item's frames, ready for a template. `info` holds facts such as original sizes per role."""

    ref: ItemRef
    frames: list[Frame]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.ref.key
