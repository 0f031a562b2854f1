"""What grouping templates share: bounded group keys, seeded shuffles, chunks, and frames by role.

Group size. A group is decoded in memory at once, so group keys must bound it. Grouping templates
key an item by (task, unit). The pipeline (lvm_data.job.steps.read_items) first calls the key with
the read unit, puts the item in the write bucket of that key, then groups by the key of the item
with its bucket as unit: a group is one task's items in one write bucket, about `shard_size` items
(buckets = planned items / shard_size). The paired source of this package assigns items to read
units by a hash of their key, so every unit, bucket and group is a uniform sample of the source and
a seeded shuffle inside a group is a shuffle within the source. Sources that cut units as sorted
runs (image folders) mix items within the runs that share a bucket.

Boundary rule shared by pair-like templates (pairs, derived): each group is shuffled (seeded by job
seed and group), cut into sentences of k pairs; a final chunk of at least `min_pairs` pairs becomes a
shorter sentence, a smaller one is `leftover` (filtered), so every item ends in exactly one row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TypeVar

from lvm_data.determinism import rng_for
from lvm_data.items import DecodedItem, Frame, ItemRef
from lvm_data.outcomes import Outcome, Reason
from lvm_data.sentences.base import Template, TemplateContext

T = TypeVar("T")


class LimitedTemplate(Template):
    """A template whose sentence length limit can be set per source: option `max_images` (default
    the job's, LVM's 16 images = 4096 tokens). Each template documents its rule at the limit."""

    def __init__(self, options: dict | None = None, context: TemplateContext = TemplateContext()):
        super().__init__(options, context)
        limit = positive(self.options, "max_images", context.max_images)
        self.context = dataclasses.replace(context, max_images=limit)


def unit_group(task: str, ref: ItemRef) -> str:
    """The group key of a pair-like item: its task and its read unit."""
    return f"{task}/{ref.unit}"


def shuffled(values: Sequence[T], seed: int, *keys: str) -> list[T]:
    """A seeded permutation of `values` (their order in must be deterministic, e.g. sorted by key)."""
    order = rng_for(seed, *keys).permutation(len(values))
    return [values[i] for i in order]


def chunked(values: Sequence[T], size: int) -> list[list[T]]:
    return [list(values[i : i + size]) for i in range(0, len(values), size)]


def split_leftover(chunks: list[list[T]], minimum: int) -> tuple[list[list[T]], list[T]]:
    """(chunks kept, items left over): the last chunk is kept only with at least `minimum` items."""
    if chunks and len(chunks[-1]) < minimum:
        return chunks[:-1], chunks[-1]
    return chunks, []


def leftover(detail: str) -> Outcome:
    return Outcome.filtered(Reason.LEFTOVER, detail)


def frames_by_role(item: DecodedItem) -> dict[str, list[Frame]]:
    """The item's frames grouped by role, in item order."""
    out: dict[str, list[Frame]] = {}
    for frame in item.frames:
        out.setdefault(frame.role, []).append(frame)
    return out


def annotation_roles(item_roles: Sequence[str], image_role: str = "image") -> list[str]:
    return [role for role in item_roles if role != image_role]


def positive(options: dict, name: str, default: int) -> int:
    """An integer option >= 1, with an error that names it."""
    value = options.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"template option {name!r} must be a whole number >= 1, got {value!r}")
    return value


def choice(options: dict, name: str, default: str, allowed: Sequence[str]) -> str:
    value = options.get(name, default)
    if value not in allowed:
        raise ValueError(f"template option {name!r} is {value!r}; use one of {', '.join(allowed)}")
    return value
