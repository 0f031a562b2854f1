"""Image filters: bounds on the original decoded size, and near-blank / very low-variance images.

Each check takes a decoded item and returns None (keep) or the filtered Outcome, whose detail states
the measured value and the limit. Bounds read the original width and height that decoding recorded in
`item.info[role]` (the first part that has them); the variance check looks at the first frame as the
tokenizer sees it.
"""

from __future__ import annotations

import numpy as np

from lvm_data.curation.config import Bounds, LowVariance
from lvm_data.curation.hashes import luma
from lvm_data.items import DecodedItem
from lvm_data.outcomes import Outcome, Reason

UNIFORM_LEVELS = 4  # luma levels around the median that count as "the same"


def original_size(item: DecodedItem) -> tuple[int, int] | None:
    """(width, height) as decoded, before resizing, of the item's first part that recorded it."""
    for info in item.info.values():
        if isinstance(info, dict) and "width" in info and "height" in info:
            return int(info["width"]), int(info["height"])
    return None


def check_bounds(item: DecodedItem, bounds: Bounds) -> Outcome | None:
    size = original_size(item)
    if size is None:
        return None
    width, height = size
    short, long = min(width, height), max(width, height)
    where = f"{item.ref.uri}: {width}x{height}"
    if bounds.min_side and short < bounds.min_side:
        return Outcome.filtered(Reason.TOO_SMALL, f"{where}: shorter side {short} < min_side {bounds.min_side}")
    if bounds.min_area and width * height < bounds.min_area:
        return Outcome.filtered(Reason.TOO_SMALL, f"{where}: area {width * height} < min_area {bounds.min_area}")
    if bounds.max_aspect and long > bounds.max_aspect * max(short, 1):
        return Outcome.filtered(
            Reason.BAD_ASPECT, f"{where}: aspect {long / max(short, 1):.2f} > max_aspect {bounds.max_aspect:g}"
        )
    return None


def variance_stats(pixels: np.ndarray) -> tuple[float, float]:
    """(luma standard deviation, share of pixels within UNIFORM_LEVELS of the median luma)."""
    gray = luma(pixels)
    uniform = float(np.mean(np.abs(gray - np.median(gray)) <= UNIFORM_LEVELS))
    return float(gray.std()), uniform


def check_variance(item: DecodedItem, limits: LowVariance) -> Outcome | None:
    if not item.frames:
        return None
    std, uniform = variance_stats(item.frames[0].pixels)
    if std < limits.min_std:
        return Outcome.filtered(Reason.LOW_VARIANCE, f"{item.ref.uri}: luma std {std:.2f} < min_std {limits.min_std:g}")
    if uniform >= limits.max_uniform:
        return Outcome.filtered(
            Reason.LOW_VARIANCE,
            f"{item.ref.uri}: {uniform:.1%} of pixels one shade >= max_uniform {limits.max_uniform:.0%}",
        )
    return None
