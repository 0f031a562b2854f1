"""`video`: every sampled clip of a video file or frame folder is one sentence (LVM: 16 frames).

Clips are sampled when decoding (lvm_data.media.clips: frames, strides, clips per video, offset are
options of the video / frame-folder input). Boundary rule: a clip longer than `max_images` is split
into consecutive windows of `max_images` frames (the last one may be shorter); nothing is dropped.
An item that yields no clip is `too_short`.
"""

from __future__ import annotations

from lvm_data.items import DecodedItem, Frame
from lvm_data.outcomes import Outcome, Reason
from lvm_data.sentences.base import BuildResult, Sentence
from lvm_data.sentences.grouping import LimitedTemplate, chunked


def item_clips(item: DecodedItem, per_frame: int = 1) -> list[tuple[dict, list[Frame]]]:
    """(clip info, its frames) for each clip the decoder reported in info[role]["clips"].

    `per_frame` is how many images each sampled frame contributes (1 + annotation kinds for sequences).
    """
    infos = [info for info in item.info.values() if isinstance(info, dict) and "clips" in info]
    if not infos:
        return []
    out, start = [], 0
    for clip in infos[0]["clips"]:
        count = clip["length"] * per_frame
        out.append((clip, item.frames[start : start + count]))
        start += count
    if start != len(item.frames):
        raise ValueError(f"{item.key}: clips cover {start} frames, the item has {len(item.frames)}")
    return out


def no_clips(item: DecodedItem) -> Outcome:
    return Outcome.failed(
        Reason.TOO_SHORT,
        f"{item.ref.uri}: no clip was sampled ({len(item.frames)} frame(s); a still image is not a video)",
    )


class Video(LimitedTemplate):
    name = "video"

    def build(self, items: list[DecodedItem]) -> BuildResult:
        task = self.options.get("task", "video")
        sentences, outcomes = [], {}
        for item in items:
            clips = item_clips(item)
            if not clips:
                outcomes[item.key] = no_clips(item)
            for clip, frames in clips:
                for window, part in enumerate(chunked(frames, self.context.max_images)):
                    params = {"stride": clip["stride"], "start": clip["start"], "window": window}
                    sentences.append(
                        Sentence(
                            source=item.ref.source,
                            template=self.name,
                            task=task,
                            frames=part,
                            item_keys=[item.key],
                            unit=item.ref.unit,
                            params=params,
                        )
                    )
        return BuildResult(sentences, outcomes)
