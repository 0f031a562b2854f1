"""Decoded items made in memory, and the accounting check every template test makes."""

from __future__ import annotations

import numpy as np

from lvm_data.items import DecodedItem, Frame, ItemRef, Part
from lvm_data.sentences.base import BuildResult


def frame(uri: str, role: str = "image", index: int = 0, value: int = 0, size: int = 8) -> Frame:
    return Frame(pixels=np.full((size, size, 3), value % 256, np.uint8), uri=uri, index=index, role=role)


def item(
    key: str,
    roles=("image",),
    unit: str = "g000000",
    source: str = "src",
    meta: dict | None = None,
    uri: str | None = None,
) -> DecodedItem:
    uri = uri or f"/data/{key}.png"
    parts = {role: Part(uri if role == "image" else f"/data/{role}/{key}.png") for role in roles}
    frames = [frame(parts[role].uri, role) for role in roles]
    return DecodedItem(ItemRef(source, key, unit, parts, dict(meta or {})), frames)


def clip_item(
    key: str, clips: list[tuple[int, int, int]], role: str = "video", per_frame_roles=("video",), unit: str = "000000"
) -> DecodedItem:
    """An item as the video/frames/sequence decoders return it: clips of (stride, start, length)."""
    frames = []
    for stride, start, length in clips:
        for i in range(start, start + stride * length, stride):
            frames.extend(frame(f"/v/{key}", r, index=i, value=i) for r in per_frame_roles)
    info = {"clips": [{"stride": s, "start": b, "length": n} for s, b, n in clips]}
    if role == "sequence":
        info["annotations"] = list(per_frame_roles[1:])
    return DecodedItem(ItemRef("src", key, unit, {role: Part(f"/v/{key}")}), frames, {role: info})


def accounted(items: list[DecodedItem], result: BuildResult) -> dict[str, list[str]]:
    """Check the template contract: every item is in a sentence or has an outcome, never both.

    Returns key -> ids of the sentences it is in.
    """
    in_sentences: dict[str, list[str]] = {}
    for sentence in result.sentences:
        assert sentence.n_images >= 1
        for key in sentence.item_keys:
            in_sentences.setdefault(key, []).append(sentence.id)
    keys = {i.key for i in items}
    assert set(in_sentences) | set(result.outcomes) == keys
    assert not set(in_sentences) & set(result.outcomes)
    return in_sentences
