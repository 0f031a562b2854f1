"""Frame folders: a video stored as one image per frame, in natural order (frame2 before frame10).

A folder is sampled with the same `ClipSpec` as a video file; its frame rate (needed only for
spacings in seconds) comes from the source options. Frames are still images, so they are decoded in
process with `decode_image` (Pillow), and only the sampled frames are read.

Decoders (lvm_data.media.contract.PartDecoder) for the folder roles of the decode table: "frames" (a frame
folder), "views" (the images of one object, in view order) and "sequence" (a frame folder with its annotations).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from lvm_data import storage
from lvm_data.items import Frame, Part
from lvm_data.media.annotation_decoders import DECODERS as ANNOTATION_DECODERS
from lvm_data.media.clips import Clip, plan_clips, shortest_video
from lvm_data.media.contract import DecodeSettings, ImageGrid, PartFrames
from lvm_data.media.image import decode_image
from lvm_data.media.parts import AnnotationPart, ClipPart, SequencePart, ViewsPart
from lvm_data.media.resize import resize
from lvm_data.outcomes import ItemError, Reason

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")
_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers by value: frame2 < frame10, a9b < a10a."""
    parts = _DIGITS.split(name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts), name  # name: tie-breaker


def natural_sorted(names: list[str]) -> list[str]:
    return sorted(names, key=natural_key)


def stem(uri: str) -> str:
    """File name without folder and last extension."""
    name = uri.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def list_frames(folder: str, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[str]:
    """Image files directly inside `folder` (local or gs://), in natural order. Hidden files are skipped."""
    files = [
        uri
        for uri in storage.list_files(folder, recursive=False)
        if uri.lower().endswith(extensions) and not uri.rsplit("/", 1)[-1].startswith(".")
    ]
    return natural_sorted(files)


@dataclass
class FolderClips:
    """Sampled clips of a frame folder: frames maps a frame index to (size, size, 3) uint8 RGB."""

    n_frames: int
    clips: list[Clip]
    uris: dict[int, str]
    frames: dict[int, np.ndarray] = field(repr=False)


def decode_frame_folder(folder: ClipPart, size: int, policy: str = "squash") -> FolderClips:
    """Sample clips from a folder of frames (`folder.uri`, sampled as the part says) and decode just those.

    Raises ItemError (too_short, read_error, decode errors of a frame).
    """
    spec, fps = folder.spec, folder.fps
    try:
        uris = list_frames(folder.uri)
    except OSError as err:
        raise ItemError(Reason.READ_ERROR, f"{folder.uri}: cannot list the folder: {err}") from err
    clips = plan_clips(len(uris), fps, spec, folder.seed, folder.key or folder.uri)
    if not clips:
        raise ItemError(
            Reason.TOO_SHORT, f"{folder.uri}: {len(uris)} frames; one clip needs {shortest_video(spec, fps)}"
        )
    wanted = sorted({i for clip in clips for i in clip.indices})
    frames = {i: resize(read_image(uris[i]), size, policy) for i in wanted}
    return FolderClips(len(uris), clips, {i: uris[i] for i in wanted}, frames)


def read_image(uri: str) -> np.ndarray:
    """One image file as (H, W, 3) uint8 RGB. Raises ItemError naming the file."""
    try:
        data = storage.read_bytes(uri)
    except OSError as err:
        raise ItemError(Reason.READ_ERROR, f"{uri}: {err}") from err
    return decode_image(data, uri)


def key_function(pattern: str = ""):
    """File URI -> matching key: the first group of `pattern` searched in the file name, or the stem.

    A name the pattern does not match gets no key (None) and is left out of matching.
    """
    if not pattern:
        return stem
    regex = re.compile(pattern)

    def key(uri: str) -> str | None:
        found = regex.search(uri.rsplit("/", 1)[-1])
        return (found.group(1) if found.groups() else found.group(0)) if found else None

    return key


def decode_frames_part(part: Part, role: str, settings: DecodeSettings) -> PartFrames:
    """Decode-table entry for role "frames": sampled clips of a frame folder, clip after clip (like video)."""
    clip = part if isinstance(part, ClipPart) else ClipPart(part.uri)
    result = decode_frame_folder(clip, settings.image_size, settings.resize)
    frames = [
        Frame(pixels=result.frames[i], uri=result.uris[i], index=i, role=role) for c in result.clips for i in c.indices
    ]
    return PartFrames(frames, {"n_frames": result.n_frames, "clips": _clip_info(result.clips)})


def decode_views_part(part: Part, role: str, settings: DecodeSettings) -> PartFrames:
    """Decode-table entry for role "views": every view of an object, in view order."""
    views = part.views if isinstance(part, ViewsPart) and part.views else (part.uri,)
    frames = [
        Frame(pixels=resize(read_image(uri), settings.image_size, settings.resize), uri=uri, index=i, role=role)
        for i, uri in enumerate(views)
    ]
    return PartFrames(frames, {"views": len(frames)})


def decode_sequence_part(part: Part, role: str, settings: DecodeSettings) -> PartFrames:
    """Decode-table entry for role "sequence": sampled clips of frames, each frame followed by its
    annotations (f1, a1, f2, a2, ...: roles "image" then each annotation kind).

    Frames and annotation files are matched by key (stem, or the part's `match` pattern), never by
    position; only frames that have every annotation kind are sampled (counts in info). A sampled
    frame whose annotation cannot be rendered, or whose shape does not match its frame's
    (lvm_data.media.annotation_decoders.annotation_fit), fails the whole sequence (bad_annotation, naming the file).
    """
    seq = part if isinstance(part, SequencePart) else SequencePart(part.uri)
    matched, counts = _matched_frames(seq)
    clips = plan_clips(len(matched), seq.fps, seq.spec, seq.seed, seq.key or seq.uri)
    if not clips:
        raise ItemError(
            Reason.TOO_SHORT,
            f"{seq.uri}: {len(matched)} frames with all annotations "
            f"({counts['frames']} frames in all); one clip needs {shortest_video(seq.spec, seq.fps)}",
        )
    frames = []
    for clip in clips:
        for i in clip.indices:
            index, frame_uri, annotations = matched[i]
            pixels = read_image(frame_uri)
            frames.append(
                Frame(
                    pixels=resize(pixels, settings.image_size, settings.resize),
                    uri=frame_uri,
                    index=index,
                    role="image",
                )
            )
            grid = ImageGrid(frame_uri, *pixels.shape[:2])  # each annotation must match its frame
            for kind, uri, options in annotations:
                annotation = AnnotationPart(uri, options=options, image=Part(frame_uri))
                frames.extend(ANNOTATION_DECODERS[kind](annotation, kind, settings, image=grid).frames)
    kinds = [kind for kind, _, _ in seq.annotations]
    return PartFrames(frames, {**counts, "annotations": kinds, "clips": _clip_info(clips)})


def _matched_frames(seq: SequencePart) -> tuple[list[tuple[int, str, list]], dict[str, int]]:
    """[(frame index, frame uri, [(kind, annotation uri, options)])] for frames with every annotation."""
    key = key_function(seq.match)
    try:
        frame_uris = list_frames(seq.uri)
        tables = [
            (kind, {key(u): u for u in storage.list_files(folder, recursive=False)}, options)
            for kind, folder, options in seq.annotations
        ]
    except OSError as err:
        raise ItemError(Reason.READ_ERROR, f"{seq.uri}: cannot list the sequence's folders: {err}") from err
    matched = []
    for index, uri in enumerate(frame_uris):
        k = key(uri)
        found = [(kind, table.get(k), options) for kind, table, options in tables]
        if k is not None and all(u is not None for _, u, _ in found):
            matched.append((index, uri, found))
    return matched, {"frames": len(frame_uris), "matched": len(matched)}


def _clip_info(clips: list[Clip]) -> list[dict]:
    return [{"stride": c.stride, "start": c.indices[0], "length": len(c.indices)} for c in clips]
