"""Media the curation tests generate: frames as the tokenizer sees them, decoded items, small videos."""

from __future__ import annotations

import numpy as np

from lvm_data.items import DecodedItem, Frame, ItemRef, Part
from lvm_data.media.resize import resize


def fitted(pixels: np.ndarray, size: int = 256) -> np.ndarray:
    """A frame as the tokenizer sees it (squashed to size x size)."""
    return resize(pixels, size, "squash")


def image_item(
    key: str, pixels: np.ndarray, size: tuple[int, int] | None = None, source: str = "src", meta: dict | None = None
) -> DecodedItem:
    """A decoded still image whose original size is `size` (default: the pixels' own)."""
    height, width = pixels.shape[:2] if size is None else (size[1], size[0])
    uri = f"/data/{key}"
    return DecodedItem(
        ItemRef(source, key, "000000", {"image": Part(uri)}, dict(meta or {})),
        [Frame(fitted(pixels, 64), uri)],
        {"image": {"width": width, "height": height}},
    )


def pan(photo: np.ndarray, count: int, size: int = 96, step: int = 2) -> list[np.ndarray]:
    """`count` frames of a camera panning right across `photo` by `step` pixels per frame."""
    return [np.ascontiguousarray(photo[:size, i * step : i * step + size]) for i in range(count)]


def clip_video(key: str, clips: list[list[np.ndarray]], stride: int = 4) -> DecodedItem:
    """A decoded video item made of the given clips (lists of frames), laid out as the video decoder does."""
    frames, infos, start = [], [], 0
    for clip in clips:
        frames += [Frame(f, f"/v/{key}", start + i * stride, "video") for i, f in enumerate(clip)]
        infos.append({"stride": stride, "start": start, "length": len(clip)})
        start += len(clip) * stride
    return DecodedItem(
        ItemRef("v", key, "000000", {"video": Part(f"/v/{key}")}),
        frames,
        {"video": {"width": 96, "height": 96, "clips": infos}},
    )
