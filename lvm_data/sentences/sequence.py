"""`sequence`: annotated sequences (frames with per-frame annotations), one sentence per clip.

Orders: `interleaved` (f1, a1, f2, a2, ...; with several kinds f1, a1, b1, f2, ...) and `grouped`
(f1..fn, a1..an, b1..bn). Clips come from the sequence input (frames per clip, default 8, so one
annotation kind fills LVM's 16 images). Boundary rule: a clip whose images exceed `max_images` is
split into consecutive windows of whole frames (each frame with all its annotations), at most
max_images // (1 + kinds) frames per window. An item without a clip is `too_short`.
"""

from __future__ import annotations

from lvm_data.items import DecodedItem, Frame
from lvm_data.sentences.base import BuildResult, Sentence, TemplateContext
from lvm_data.sentences.grouping import LimitedTemplate, choice, chunked
from lvm_data.sentences.video import item_clips, no_clips

ORDERS = ("interleaved", "grouped")


def ordered(frames: list[Frame], per_frame: int, order: str) -> list[Frame]:
    """Interleaved input (f1, a1, f2, a2, ...) in the wanted order."""
    if order == "interleaved":
        return list(frames)
    return [frames[i] for offset in range(per_frame) for i in range(offset, len(frames), per_frame)]


class Sequence(LimitedTemplate):
    name = "sequence"

    def __init__(self, options: dict | None = None, context: TemplateContext = TemplateContext()):
        super().__init__(options, context)
        self.order = choice(self.options, "order", "interleaved", ORDERS)

    def build(self, items: list[DecodedItem]) -> BuildResult:
        task = self.options.get("task", "sequence")
        sentences, outcomes = [], {}
        for item in items:
            info = item.info.get("sequence", {})
            per_frame = 1 + len(info.get("annotations", []))
            clips = item_clips(item, per_frame)
            if not clips:
                outcomes[item.key] = no_clips(item)
            frames_per_window = max(1, self.context.max_images // per_frame)
            for clip, frames in clips:
                steps = chunked(frames, frames_per_window * per_frame)
                for window, part in enumerate(steps):
                    params = {"stride": clip["stride"], "start": clip["start"], "window": window, "order": self.order}
                    sentences.append(
                        Sentence(
                            source=item.ref.source,
                            template=self.name,
                            task=task,
                            frames=ordered(part, per_frame, self.order),
                            item_keys=[item.key],
                            unit=item.ref.unit,
                            params=params,
                        )
                    )
        return BuildResult(sentences, outcomes)
