"""Clip sampling: which frame indices of a video (or frame folder) become visual sentences.

A clip is `frames` indices at a fixed stride; it spans (frames - 1) * stride + 1 source frames.
Strides are given in frames (LVM samples Kinetics at 8, 12 and 24) or as spacings in seconds
(converted with the video's frame rate). Each stride gets its own clips:

- `clips: all`: every non-overlapping clip, laid out back to back (clip i starts at
  offset + i * frames * stride), capped at `max_clips` per stride by a seeded choice;
- `clips: k`: k of those non-overlapping clips, chosen by a seeded draw (all of them when fewer fit).

A stride too long for the video (`fit`): `lvm` (default) takes the longest stride that fits instead,
min(s, (T - 1) // (frames - 1)) for T frames, as LVM's video script does (`read_frames_from_video` in
github.com/ytongbai/LVM tokenize_examples/utils.py, called by tokenize_video_muse.py): a 100-frame video at
strides 8, 12, 24 gives clips at stride 6, a 200-frame one at 8, 12 and 13; strides that end up equal give
their clips once. `skip` leaves such a stride out (a 100-frame video then gives none). Either way a video
shorter than `frames` frames fits no clip and is too short.

`offset: random` shifts the grid by a seeded amount that never loses a clip (the slack left after the
last clip); `offset: start` begins at frame 0.
All randomness comes from `rng_for(seed, key, ...)`, so the same video gets the same clips anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lvm_data.determinism import rng_for

DEFAULT_STRIDES = (8, 12, 24)  # LVM's Kinetics strides
OFFSETS = ("random", "start")
FITS = ("lvm", "skip")  # a stride too long for the video: the longest that fits (LVM), or none


@dataclass(frozen=True)
class ClipSpec:
    """How to cut clips. Exactly one of `strides` (frames) or `spacing_s` (seconds) is used."""

    frames: int = 16
    strides: tuple[int, ...] = DEFAULT_STRIDES
    spacing_s: tuple[float, ...] = ()
    clips: int | None = None  # None: all non-overlapping clips
    offset: str = "random"
    max_clips: int = 64
    fit: str = "lvm"

    def __post_init__(self):
        if self.frames < 1:
            raise ValueError(f"clip frames must be >= 1, got {self.frames}")
        if not self.spacing_s and (not self.strides or min(self.strides) < 1):
            raise ValueError(f"clip strides must be whole numbers >= 1, got {list(self.strides)}")
        if self.spacing_s and min(self.spacing_s) <= 0:
            raise ValueError(f"clip spacing_s must be > 0 seconds, got {list(self.spacing_s)}")
        if self.offset not in OFFSETS:
            raise ValueError(f"clip offset {self.offset!r} is not one of {', '.join(OFFSETS)}")
        if self.clips is not None and self.clips < 1:
            raise ValueError(f"clips must be 'all' or a number >= 1, got {self.clips}")
        if self.max_clips < 1:
            raise ValueError(f"max_clips must be >= 1, got {self.max_clips}")
        if self.fit not in FITS:
            raise ValueError(f"clip fit {self.fit!r} is not one of {', '.join(FITS)}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ClipSpec:
        """From job-file options: frames, stride (int or list), spacing_s (float or list), clips, offset, max_clips."""
        clips = options.get("clips", "all")
        return cls(
            frames=int(options.get("frames", 16)),
            strides=tuple(int(s) for s in _as_list(options.get("stride", DEFAULT_STRIDES))),
            spacing_s=tuple(float(s) for s in _as_list(options.get("spacing_s", ()))),
            clips=None if clips == "all" else int(clips),
            offset=str(options.get("offset", "random")),
            max_clips=int(options.get("max_clips", 64)),
            fit=str(options.get("fit", "lvm")),
        )

    def span(self, stride: int) -> int:
        """Source frames covered by one clip at `stride`."""
        return (self.frames - 1) * stride + 1

    def strides_for(self, fps: float) -> list[int]:
        """Strides in frames; spacings in seconds become round(spacing * fps), at least 1."""
        if not self.spacing_s:
            return list(self.strides)
        if not fps or fps <= 0:
            raise ValueError("spacing_s needs the frame rate, but it is unknown; give stride in frames instead")
        return [max(1, round(s * fps)) for s in self.spacing_s]

    def fitted(self, stride: int, n_frames: int) -> int | None:
        """The stride used for a video of `n_frames` frames (None: no clip at this stride)."""
        if n_frames >= self.span(stride):
            return stride
        if self.fit == "skip" or n_frames < self.frames:
            return None
        return min(stride, (n_frames - 1) // (self.frames - 1)) if self.frames > 1 else stride


@dataclass(frozen=True)
class Clip:
    """One clip: its stride and the source frame indices, in order."""

    stride: int
    indices: tuple[int, ...]


def plan_clips(n_frames: int, fps: float, spec: ClipSpec, seed: int, key: str) -> list[Clip]:
    """Clips of a video with `n_frames` frames, deterministic in (seed, key). [] means too short."""
    out: list[Clip] = []
    fitted = [spec.fitted(s, n_frames) for s in spec.strides_for(fps)]
    for stride in dict.fromkeys(s for s in fitted if s is not None):  # unique, in the given order
        span = spec.span(stride)
        step = spec.frames * stride  # non-overlapping: the next clip starts one stride after this one ends
        count = (n_frames - span) // step + 1
        slack = (n_frames - span) - (count - 1) * step
        rng = rng_for(seed, key, "clips", str(stride))
        offset = int(rng.integers(0, slack + 1)) if spec.offset == "random" else 0
        wanted = min(count, spec.clips if spec.clips is not None else spec.max_clips)
        chosen = sorted(rng.choice(count, size=wanted, replace=False).tolist()) if wanted < count else range(count)
        for i in chosen:
            start = offset + i * step
            out.append(Clip(stride, tuple(range(start, start + span, stride))))
    return out


def shortest_video(spec: ClipSpec, fps: float) -> int:
    """Frames needed for one clip (for too_short messages): `frames` when strides are fitted, else the span of
    the smallest stride."""
    return spec.frames if spec.fit == "lvm" else min(spec.span(s) for s in spec.strides_for(fps))


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
