"""Parts that carry how they are decoded: the decode table calls `decoder(part, role, settings)`
(lvm_data.media.contract), so what a role's decoder needs beyond bytes (clip sampling, render options, a
companion image) travels on the part itself. All are frozen, picklable and small (URIs and options, no pixels).

A plain `Part` under one of these roles decodes with defaults (LVM's clip sampling, seed 0, the
part's URI as key; default render options).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lvm_data.items import Part
from lvm_data.media.clips import ClipSpec


def options_tuple(options: dict[str, Any] | None) -> tuple:
    """Options as a sorted tuple of (name, value) pairs (hashable; lists become tuples)."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in (options or {}).items()))


@dataclass(frozen=True)
class ClipPart(Part):
    """A video file (role "video") or a frame folder (role "frames") and how to sample its clips.

    `key` (the item's key) and `seed` seed the clip choice; `fps` is the frame folder's rate (used
    only for spacings in seconds); `timeout_s` and `backends` apply to video files.
    """

    spec: ClipSpec = ClipSpec()
    key: str = ""
    seed: int = 0
    fps: float = 0.0
    timeout_s: float = 300.0
    backends: tuple = ("pyav", "opencv", "decord")


@dataclass(frozen=True)
class AnnotationPart(Part):
    """An annotation file (role = its kind: depth, segmentation, normals, edges, pose, boxes, target).

    `options` are the kind's render options (see lvm_data.media.annotation_decoders); `image` is the item's
    image, which pose and boxes need for the coordinate frame (and draw over with `overlay`).
    """

    options: tuple = ()
    image: Part | None = None

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.options).get(name, default)


@dataclass(frozen=True)
class SequencePart(Part):
    """An annotated sequence (role "sequence"): `uri` is the frame folder; `annotations` are
    (kind, folder, options tuple) triples whose files match frames by key; clips as in ClipPart.
    `match` is a regex whose first group is a file's key (default: the file stem)."""

    annotations: tuple = ()
    spec: ClipSpec = ClipSpec(frames=8)
    key: str = ""
    seed: int = 0
    fps: float = 0.0
    match: str = ""


@dataclass(frozen=True)
class ViewsPart(Part):
    """Ordered views of one object (role "views"): `views` are the image URIs in view order."""

    views: tuple = ()
