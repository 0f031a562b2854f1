"""`pairs`: k (x, y) pairs of one task per sentence, [x1, y1, ..., xk, yk] (LVM: k = 8, 16 images).

x is the item's image, y its annotation (a role such as depth or segmentation, rendered to RGB by
the decoder). Items are grouped by (task, read unit) and shuffled with a seed (see
lvm_data.sentences.grouping for the group size and leftover rules). An item without both sides is
`unpaired`. Options: `pairs` (k, default 8), `min_pairs` (smallest final sentence, default 2),
`annotation` (which role is y when items carry several), `task` (default: the annotation role).
"""

from __future__ import annotations

from lvm_data.items import DecodedItem, Frame, ItemRef
from lvm_data.outcomes import Outcome, Reason
from lvm_data.sentences.base import BuildResult, Sentence, TemplateContext
from lvm_data.sentences.grouping import (
    LimitedTemplate,
    annotation_roles,
    chunked,
    frames_by_role,
    leftover,
    positive,
    shuffled,
    split_leftover,
    unit_group,
)


class PairTemplate(LimitedTemplate):
    """Shared machinery: sentences of k (x, y) pairs built from items of one group."""

    default_pairs = 8

    def __init__(self, options: dict | None = None, context: TemplateContext = TemplateContext()):
        super().__init__(options, context)
        self.pairs = positive(self.options, "pairs", self.default_pairs)
        self.min_pairs = positive(self.options, "min_pairs", min(2, self.pairs))
        if 2 * self.pairs > self.context.max_images:
            raise ValueError(
                f"template {self.name}: {self.pairs} pairs need {2 * self.pairs} images but a sentence "
                f"holds at most {self.context.max_images}; lower `pairs`"
            )
        if self.min_pairs > self.pairs:
            raise ValueError(f"template {self.name}: min_pairs {self.min_pairs} is more than pairs {self.pairs}")

    def task_for(self, ref: ItemRef) -> str:
        raise NotImplementedError

    def pair_of(self, item: DecodedItem) -> tuple[Frame, Frame] | Outcome:
        raise NotImplementedError

    def group_key(self, ref: ItemRef) -> str:
        return unit_group(self.task_for(ref), ref)

    def build(self, items: list[DecodedItem]) -> BuildResult:
        outcomes: dict[str, Outcome] = {}
        by_task: dict[str, list[tuple[DecodedItem, tuple[Frame, Frame]]]] = {}
        for item in sorted(items, key=lambda i: i.key):
            pair = self.pair_of(item)
            if isinstance(pair, Outcome):
                outcomes[item.key] = pair
            else:
                by_task.setdefault(self.task_for(item.ref), []).append((item, pair))
        sentences = []
        for task, entries in sorted(by_task.items()):
            unit = entries[0][0].ref.unit
            kept, rest = split_leftover(
                chunked(shuffled(entries, self.context.seed, self.name, task, unit), self.pairs), self.min_pairs
            )
            for item, _ in rest:
                outcomes[item.key] = leftover(
                    f"{len(rest)} {task} pair(s) left in group {task}/{unit}; "
                    f"a sentence needs at least {self.min_pairs}"
                )
            for chunk in kept:
                frames = [frame for _, pair in chunk for frame in pair]
                sentences.append(
                    Sentence(
                        source=chunk[0][0].ref.source,
                        template=self.name,
                        task=task,
                        frames=frames,
                        item_keys=[item.key for item, _ in chunk],
                        unit=unit,
                        params={"pairs": len(chunk)},
                    )
                )
        return BuildResult(sentences, outcomes)


class Pairs(PairTemplate):
    name = "pairs"

    def annotation_role(self, roles: list[str]) -> str | None:
        wanted = self.options.get("annotation")
        if wanted:
            return wanted if wanted in roles else None
        candidates = annotation_roles(roles)
        return candidates[0] if len(candidates) == 1 else None

    def task_for(self, ref: ItemRef) -> str:
        return self.options.get("task") or self.annotation_role(list(ref.parts)) or "unpaired"

    def pair_of(self, item: DecodedItem) -> tuple[Frame, Frame] | Outcome:
        frames = frames_by_role(item)
        role = self.annotation_role(list(frames))
        if "image" not in frames or role is None:
            have = ", ".join(frames) or "nothing"
            need = self.options.get("annotation") or "one annotation"
            hint = "" if len(annotation_roles(list(frames))) <= 1 else "; set the pairs option `annotation`"
            return Outcome.failed(Reason.UNPAIRED, f"{item.ref.uri}: has {have}, a pair needs image and {need}{hint}")
        return frames["image"][0], frames[role][0]
