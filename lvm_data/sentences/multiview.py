"""`multiview`: the ordered views of one object are one sentence.

Boundary rule: an object with more than `max_images` views is split into consecutive sentences of
`max_images` views (the last may be shorter, but never below `min_views`: a final remainder that
small joins no sentence and the object is still ok through its other sentences). An object with
fewer than `min_views` views (default 2) is `too_short`.
"""

from __future__ import annotations

from lvm_data.items import DecodedItem
from lvm_data.outcomes import Outcome, Reason
from lvm_data.sentences.base import BuildResult, Sentence
from lvm_data.sentences.grouping import LimitedTemplate, chunked, positive


class MultiView(LimitedTemplate):
    name = "multiview"

    def build(self, items: list[DecodedItem]) -> BuildResult:
        task = self.options.get("task", "multiview")
        min_views = positive(self.options, "min_views", 2)
        sentences, outcomes = [], {}
        for item in items:
            if len(item.frames) < min_views:
                outcomes[item.key] = Outcome.failed(
                    Reason.TOO_SHORT,
                    f"{item.ref.uri}: {len(item.frames)} view(s); a multi-view sentence needs {min_views}",
                )
                continue
            windows = chunked(item.frames, self.context.max_images)
            if len(windows) > 1 and len(windows[-1]) < min_views:
                windows = windows[:-1]
            for window, frames in enumerate(windows):
                sentences.append(
                    Sentence(
                        source=item.ref.source,
                        template=self.name,
                        task=task,
                        frames=frames,
                        item_keys=[item.key],
                        unit=item.ref.unit,
                        params={"window": window},
                    )
                )
        return BuildResult(sentences, outcomes)
