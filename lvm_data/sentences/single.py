"""`single`: every image is a one-image sentence (LVM's unlabelled images, e.g. LAION)."""

from __future__ import annotations

from lvm_data.items import DecodedItem
from lvm_data.sentences.base import BuildResult, Sentence, Template


class Single(Template):
    name = "single"

    def build(self, items: list[DecodedItem]) -> BuildResult:
        task = self.options.get("task", "image")
        sentences = [
            Sentence(
                source=item.ref.source,
                template=self.name,
                task=task,
                frames=item.frames[:1],
                item_keys=[item.key],
                unit=item.ref.unit,
            )
            for item in items
        ]
        return BuildResult(sentences)
