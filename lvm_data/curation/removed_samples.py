"""Samples of what the filters removed, for the report's contact sheet.

Every removal made after decoding carries a small JPEG thumbnail of its frame; a unit keeps, per
reason, the `PER_UNIT` removals with the smallest rank (a hash of source, key and detail), so the
choice never depends on arrival order. Removals decided before decoding (the dedup index) decode only
the items that would be kept as samples. Blocklisted items are never sampled or shown. Sentences
removed in token space keep the codes of their first image; the report decodes them with the job's
tokenizer.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from lvm_data.determinism import derive_seed

THUMBNAIL = 96  # pixels per side
PER_UNIT = 4  # samples kept per reason per unit


def thumbnail(pixels: np.ndarray) -> bytes:
    """A THUMBNAIL-pixel JPEG of an RGB frame."""
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BILINEAR).save(
        out, format="JPEG", quality=85
    )
    return out.getvalue()


def rank(source: str, key: str, detail: str = "") -> int:
    """Stable sampling rank of a removal: smaller ranks are kept first."""
    return derive_seed(0, "curation-sample", source, key, detail)


def choose(rows: list[dict], per_reason: int = PER_UNIT) -> list[dict]:
    """Per reason, the `per_reason` rows (dicts with reason, rank, key) of smallest rank."""
    by_reason: dict[str, list[dict]] = {}
    for row in rows:
        by_reason.setdefault(row["reason"], []).append(row)
    return [
        r
        for reason in sorted(by_reason)
        for r in sorted(by_reason[reason], key=lambda r: (r["rank"], r["key"]))[:per_reason]
    ]


def sampled_keys(decisions: dict[str, tuple[str, str]], source: str, per_reason: int = PER_UNIT) -> set[str]:
    """Keys of a unit's pre-decided removals worth decoding for a thumbnail (never blocklisted ones)."""
    rows = [
        {"reason": reason, "rank": rank(source, key, detail), "key": key}
        for key, (reason, detail) in decisions.items()
        if reason != "blocklisted"
    ]
    return {r["key"] for r in choose(rows, per_reason)}


def decode_jpeg(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
