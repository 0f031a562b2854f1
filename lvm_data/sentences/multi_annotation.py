"""`multi_annotation`: an image with several annotation kinds; each shot is [image, a1, ..., am].

The annotations of a shot come in a seeded order (job seed, item key) unless `order: fixed` (the
`annotations` option's order, else the item's part order). Shots of one group (read unit, see
lvm_data.sentences.grouping) are shuffled and packed whole into sentences of at most `max_images`
images; the last sentence of a group may hold fewer shots. Boundary rule: a shot never straddles two
sentences; a shot longer than `max_images` keeps the image and its first max_images - 1 annotations.
Options: `annotations` (roles to use; default every non-image role), `min_annotations` (default 1;
fewer is `unpaired`), `order` (seeded | fixed), `task` (default multi_annotation).
"""

from __future__ import annotations

from lvm_data.items import DecodedItem, Frame, ItemRef
from lvm_data.outcomes import Outcome, Reason
from lvm_data.sentences.base import BuildResult, Sentence, TemplateContext, rng_for
from lvm_data.sentences.grouping import (
    LimitedTemplate,
    annotation_roles,
    choice,
    frames_by_role,
    positive,
    shuffled,
    unit_group,
)


class MultiAnnotation(LimitedTemplate):
    name = "multi_annotation"

    def __init__(self, options: dict | None = None, context: TemplateContext = TemplateContext()):
        super().__init__(options, context)
        self.task = self.options.get("task", "multi_annotation")
        self.order = choice(self.options, "order", "seeded", ("seeded", "fixed"))
        self.min_annotations = positive(self.options, "min_annotations", 1)
        self.wanted = list(self.options.get("annotations", []))

    def group_key(self, ref: ItemRef) -> str:
        return unit_group(self.task, ref)

    def shot(self, item: DecodedItem) -> list[Frame] | Outcome:
        frames = frames_by_role(item)
        roles = [r for r in self.wanted if r in frames] if self.wanted else annotation_roles(list(frames))
        if "image" not in frames or len(roles) < self.min_annotations:
            return Outcome.failed(Reason.UNPAIRED, f"{item.ref.uri}: has {', '.join(frames) or 'nothing'}; a shot "
                                  f"needs image and at least {self.min_annotations} annotation(s)")
        if self.order == "seeded":
            roles = [roles[i] for i in rng_for(self.context.seed, "annotation-order", item.key).permutation(len(roles))]
        shot = [frames["image"][0]] + [frames[role][0] for role in roles]
        return shot[:self.context.max_images]

    def build(self, items: list[DecodedItem]) -> BuildResult:
        outcomes, shots = {}, []
        for item in sorted(items, key=lambda i: i.key):
            shot = self.shot(item)
            if isinstance(shot, Outcome):
                outcomes[item.key] = shot
            else:
                shots.append((item, shot))
        if not shots:
            return BuildResult([], outcomes)
        unit = shots[0][0].ref.unit
        sentences, current = [], []
        for entry in shuffled(shots, self.context.seed, self.name, unit) + [None]:
            if current and (entry is None or sum(len(s) for _, s in current) + len(entry[1]) > self.context.max_images):
                sentences.append(self._sentence(current, unit))
                current = []
            if entry is not None:
                current.append(entry)
        return BuildResult(sentences, outcomes)

    def _sentence(self, shots: list[tuple[DecodedItem, list[Frame]]], unit: str) -> Sentence:
        return Sentence(source=shots[0][0].ref.source, template=self.name, task=self.task,
                        frames=[f for _, shot in shots for f in shot], item_keys=[item.key for item, _ in shots],
                        unit=unit, params={"shots": [len(shot) for _, shot in shots]})
