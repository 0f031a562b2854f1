"""`category`: images grouped by class; a shot is k images of one class, a sentence several shots.

The class comes from option `label`: `folder` (the name of the item's parent folder, as in
ImageNet-style trees) or a dotted path into the item's meta that the source fills (`json.label`: a
field of a webdataset sample's .json; `label`: a Parquet/HF column listed in `meta_columns`);
default `auto`: meta `label`, else `json.label`, else the folder.

Within a group (read unit, see lvm_data.sentences.grouping) each class is shuffled (seeded) and cut
into shots of `shot_size` images (default 4); a class's last shot with fewer images is `leftover`.
Shots are dealt round-robin over the classes (seeded class order), so neighbouring shots show
different classes whenever the group has several, and packed `shots` per sentence (default
max_images // shot_size = 4); the last sentence of a group may hold fewer shots.
An item without a label is `bad_annotation`. With image folders sorted by class, a read unit holds
one or two classes and a group the few classes of the units in its bucket; sources whose units mix
classes (shuffled Parquet/HF/webdataset shards) give shots of more classes per sentence.
"""

from __future__ import annotations

from itertools import zip_longest

from lvm_data.items import DecodedItem, ItemRef
from lvm_data.outcomes import Outcome, Reason
from lvm_data.sentences.base import BuildResult, Sentence, TemplateContext
from lvm_data.sentences.grouping import (
    LimitedTemplate,
    chunked,
    frames_by_role,
    leftover,
    positive,
    shuffled,
    split_leftover,
)


def item_label(ref: ItemRef, label: str) -> str | None:
    """The item's class by the `label` rule: folder, auto, or a dotted path into meta (`json.label`)."""
    if label == "auto":
        for path in ("label", "json.label"):
            value = meta_value(ref.meta, path)
            if value is not None:
                return str(value)
        return folder_name(ref.uri)
    if label == "folder":
        return folder_name(ref.uri)
    value = meta_value(ref.meta, label)
    return None if value is None else str(value)


def meta_value(meta: dict, path: str):
    """meta["a"]["b"] for path "a.b"; None where any step is missing."""
    value = meta
    for step in path.split("."):
        if not isinstance(value, dict) or step not in value:
            return None
        value = value[step]
    return value


def folder_name(uri: str) -> str | None:
    parts = uri.rstrip("/").rsplit("/", 2)
    return parts[-2] if len(parts) >= 2 and parts[-2] else None


class Category(LimitedTemplate):
    name = "category"

    def __init__(self, options: dict | None = None, context: TemplateContext = TemplateContext()):
        super().__init__(options, context)
        self.label = str(self.options.get("label", "auto"))
        self.shot_size = positive(self.options, "shot_size", 4)
        if self.shot_size > self.context.max_images:
            raise ValueError(
                f"template category: shot_size {self.shot_size} is more than max_images {self.context.max_images}"
            )
        self.shots = positive(self.options, "shots", self.context.max_images // self.shot_size)
        if self.shots * self.shot_size > self.context.max_images:
            raise ValueError(
                f"template category: {self.shots} shots of {self.shot_size} images exceed "
                f"max_images {self.context.max_images}; lower `shots` or `shot_size`"
            )
        self.task = self.options.get("task", "category")

    def group_key(self, ref: ItemRef) -> str:
        return f"{self.task}/{ref.unit}"

    def build(self, items: list[DecodedItem]) -> BuildResult:
        outcomes, classes = {}, {}
        for item in sorted(items, key=lambda i: i.key):
            label = item_label(item.ref, self.label)
            if label is None or "image" not in frames_by_role(item):
                outcomes[item.key] = Outcome.failed(
                    Reason.BAD_ANNOTATION, f"{item.ref.uri}: no class label (label rule {self.label!r}) or no image"
                )
            else:
                classes.setdefault(label, []).append(item)
        if not classes:
            return BuildResult([], outcomes)
        unit = next(iter(classes.values()))[0].ref.unit
        seed = self.context.seed
        per_class = []
        for label in shuffled(sorted(classes), seed, self.name, "classes", unit):
            shots, rest = split_leftover(
                chunked(shuffled(classes[label], seed, self.name, label, unit), self.shot_size), self.shot_size
            )
            for item in rest:
                outcomes[item.key] = leftover(
                    f"class {label}: {len(rest)} image(s) left in group {unit}; a shot needs {self.shot_size}"
                )
            per_class.append([(label, shot) for shot in shots])
        dealt = [shot for round_ in zip_longest(*per_class) for shot in round_ if shot is not None]
        sentences = [self._sentence(chunk, unit) for chunk in chunked(dealt, self.shots)]
        return BuildResult(sentences, outcomes)

    def _sentence(self, shots: list[tuple[str, list[DecodedItem]]], unit: str) -> Sentence:
        items = [item for _, shot in shots for item in shot]
        return Sentence(
            source=items[0].ref.source,
            template=self.name,
            task=self.task,
            frames=[frames_by_role(item)["image"][0] for item in items],
            item_keys=[item.key for item in items],
            unit=unit,
            params={"labels": [label for label, _ in shots], "shot_size": self.shot_size},
        )
