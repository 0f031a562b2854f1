"""`multi_annotation`: an image with several annotation kinds; each shot holds the image and its annotations.

Slot order (option `order`):
- `shared` (default, LVM's): one seeded order of all the sentence's slots, the image included, drawn
  per sentence and used by every shot of it, so that later shots follow the layout of the first ones.
  LVM's tokenize_examples/tokenize_multi_datasets_muse.py (github.com/ytongbai/LVM, `main`, with
  `shuffle_tasks`) draws one `np.random.permutation` of the 5 slots per sentence and applies it to every
  shot (`tokens[:, permutations, :]`). A shot lacking a slot skips it; the order is seeded by (job seed,
  the sentence's item keys) and recorded in the sentence's params (`slots`).
- `seeded`: [image, a1, ..., am] with the annotations in a seeded order per item (job seed, item key).
- `fixed`: [image, a1, ..., am] in the `annotations` option's order, else the item's part order.

Shots of one group (read unit, see lvm_data.sentences.grouping) are shuffled and packed whole into
sentences of at most `max_images` images; the last sentence of a group may hold fewer shots. Boundary
rule: a shot never straddles two sentences; a shot longer than `max_images` keeps the image and its first
max_images - 1 annotations (then the order applies). Options: `annotations` (roles to use; default every
non-image role), `min_annotations` (default 1; fewer is `unpaired`), `order`, `task` (default
multi_annotation).
"""

from __future__ import annotations

from typing import Any

from lvm_data.determinism import rng_for
from lvm_data.items import DecodedItem, Frame, ItemRef
from lvm_data.outcomes import Outcome, Reason
from lvm_data.sentences.base import BuildResult, Sentence, TemplateContext
from lvm_data.sentences.grouping import (
    LimitedTemplate,
    annotation_roles,
    choice,
    frames_by_role,
    positive,
    shuffled,
    unit_group,
)

ORDERS = ("shared", "seeded", "fixed")


class MultiAnnotation(LimitedTemplate):
    name = "multi_annotation"

    def __init__(self, options: dict | None = None, context: TemplateContext = TemplateContext()):
        super().__init__(options, context)
        self.task = self.options.get("task", "multi_annotation")
        self.order = choice(self.options, "order", "shared", ORDERS)
        self.min_annotations = positive(self.options, "min_annotations", 1)
        self.wanted = list(self.options.get("annotations", []))

    def group_key(self, ref: ItemRef) -> str:
        return unit_group(self.task, ref)

    def shot(self, item: DecodedItem) -> list[Frame] | Outcome:
        frames = frames_by_role(item)
        roles = [r for r in self.wanted if r in frames] if self.wanted else annotation_roles(list(frames))
        if "image" not in frames or len(roles) < self.min_annotations:
            return Outcome.failed(
                Reason.UNPAIRED,
                f"{item.ref.uri}: has {', '.join(frames) or 'nothing'}; a shot "
                f"needs image and at least {self.min_annotations} annotation(s)",
            )
        if self.order == "seeded":
            roles = [roles[i] for i in rng_for(self.context.seed, "annotation-order", item.key).permutation(len(roles))]
        shot = [frames["image"][0]] + [frames[role][0] for role in roles]
        return shot[: self.context.max_images]

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
        params: dict[str, Any] = {"shots": [len(shot) for _, shot in shots]}
        if self.order == "shared":
            slots = self.shared_order(shots)
            shots = [(item, sorted(shot, key=lambda f: slots.index(f.role))) for item, shot in shots]
            params["slots"] = slots
        return Sentence(
            source=shots[0][0].ref.source,
            template=self.name,
            task=self.task,
            frames=[f for _, shot in shots for f in shot],
            item_keys=[item.key for item, _ in shots],
            unit=unit,
            params=params,
        )

    def shared_order(self, shots: list[tuple[DecodedItem, list[Frame]]]) -> list[str]:
        """One seeded order of every slot the sentence's shots hold (roles, the image's included)."""
        roles = sorted({f.role for _, shot in shots for f in shot})
        rng = rng_for(self.context.seed, "slot-order", *(item.key for item, _ in shots))
        return [roles[i] for i in rng.permutation(len(roles))]
