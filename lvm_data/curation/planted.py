"""A corpus with planted duplicates and junk, its ground truth, and precision/recall of a job's ledger on it.

`write_planted(folder, photos)` writes two image folders from real photos (lvm_data.media.samples):
- photos/: every photo as PNG (kept), plus junk: a blank, a near-blank, a tiny, a too-wide image and
  a copy of a photo named 'zz-banned.png' (for a blocklist pattern);
- reposts/: copies of each photo: the same pixels re-saved (exact), a JPEG re-encode (q 60), a half-size
  resize, and crops of 1 % and 3 % off every side.
Name the sources so that `photos` sorts before `reposts`: the originals then survive (the stable rule).
`score(planted, ledger)` compares a ledger (file name -> reason) with the truth: precision and recall per
reason, for dedup as a whole (duplicate or near_duplicate), and recall per kind of copy. Tests and
`benchmarks/curation.py` use it; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

DEDUP = ("duplicate", "near_duplicate")


def _crop(fraction: float) -> Callable[[np.ndarray], np.ndarray]:
    def crop(a: np.ndarray) -> np.ndarray:
        h, w = a.shape[:2]
        dy, dx = max(1, round(h * fraction)), max(1, round(w * fraction))
        return a[dy : h - dy, dx : w - dx]

    return crop


def _half(a: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(a).resize((a.shape[1] // 2, a.shape[0] // 2), Image.Resampling.BILINEAR))


COPIES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str, str]] = {  # kind -> (transform, suffix, reason)
    "exact": (lambda a: a, ".png", "duplicate"),
    "jpeg": (lambda a: a, ".jpg", "near_duplicate"),
    "resized": (_half, ".png", "near_duplicate"),
    "crop1": (_crop(0.01), ".png", "near_duplicate"),
    "crop3": (_crop(0.03), ".png", "near_duplicate"),
}


@dataclass
class Planted:
    """Ground truth: file name -> expected ledger reason ('ok' for kept), and copy name -> its kind."""

    photos: Path
    reposts: Path
    expected: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)


def _save(path: Path, pixels: np.ndarray) -> None:
    Image.fromarray(np.ascontiguousarray(pixels)).save(path, quality=60)  # quality: JPEG only


def _junk(photo: np.ndarray) -> dict[str, tuple[np.ndarray, str]]:
    near_blank = np.full((256, 256, 3), 250, np.uint8)
    near_blank[120:130, 120:136] = 20  # a small mark on white
    return {
        "blank.png": (np.full((300, 300, 3), 128, np.uint8), "low_variance"),
        "near-blank.png": (near_blank, "low_variance"),
        "tiny.png": (photo[:40, :40], "too_small"),
        "wide.png": (np.asarray(Image.fromarray(photo).resize((640, 150))), "bad_aspect"),
        "zz-banned.png": (photo, "blocklisted"),
    }


def write_planted(
    folder: str | Path, photos: list[Path], copies: tuple[str, ...] = tuple(COPIES), junk: bool = True
) -> Planted:
    """Write the corpus under `folder`; returns its ground truth (file names are unique across both folders)."""
    folder = Path(folder)
    planted = Planted(folder / "photos", folder / "reposts")
    planted.photos.mkdir(parents=True, exist_ok=True)
    planted.reposts.mkdir(parents=True, exist_ok=True)
    for path in photos:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        _save(planted.photos / f"{path.stem}.png", pixels)
        planted.expected[f"{path.stem}.png"] = "ok"
        for kind in copies:
            transform, suffix, reason = COPIES[kind]
            name = f"{path.stem}-{kind}{suffix}"
            _save(planted.reposts / name, transform(pixels))
            planted.expected[name], planted.kinds[name] = reason, kind
    if junk and photos:
        for name, (pixels, reason) in _junk(np.asarray(Image.open(photos[0]).convert("RGB"))).items():
            _save(planted.photos / name, pixels)
            planted.expected[name] = reason
    return planted


def _pr(expected: set[str], got: set[str]) -> dict:
    hits = len(expected & got)
    return {
        "expected": len(expected),
        "removed": len(got),
        "correct": hits,
        "precision": hits / len(got) if got else 1.0,
        "recall": hits / len(expected) if expected else 1.0,
    }


def score(planted: Planted, ledger: dict[str, str]) -> dict:
    """Precision/recall of `ledger` (file name -> reason) against the truth: 'reasons' (per reason, dedup
    reasons merged into 'dedup'), and 'copies' (recall per kind of copy)."""

    def merged(reason: str) -> str:
        return "dedup" if reason in DEDUP else reason

    names = set(planted.expected)
    reasons = {merged(r) for r in [*planted.expected.values(), *(ledger[n] for n in names if n in ledger)]} - {"ok"}
    rows = {
        r: _pr(
            {n for n in names if merged(planted.expected[n]) == r},
            {n for n in names if merged(ledger.get(n, "missing")) == r},
        )
        for r in sorted(reasons)
    }
    kinds = {}
    for kind in sorted(set(planted.kinds.values())):
        copies = [n for n, k in planted.kinds.items() if k == kind]
        kinds[kind] = sum(ledger.get(n) in DEDUP for n in copies) / len(copies)
    return {"reasons": rows, "copies": kinds}
