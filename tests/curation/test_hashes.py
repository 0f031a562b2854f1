import io
import itertools

import numpy as np
from PIL import Image

from lvm_data.curation.hashes import dhash, hamming, perceptual_hash, phash, pixel_digest

from .media import fitted


def reencoded(pixels: np.ndarray, fmt: str, **options) -> np.ndarray:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt, **options)
    return np.asarray(Image.open(io.BytesIO(out.getvalue())).convert("RGB"))


def test_pixel_digest_sees_pixels_not_files(pictures):
    cat = pictures["chelsea"]
    assert pixel_digest(reencoded(cat, "PNG")) == pixel_digest(cat)  # other bytes, same pixels
    changed = cat.copy()
    changed[0, 0, 0] ^= 1
    assert pixel_digest(changed) != pixel_digest(cat)
    assert pixel_digest(cat[:, :-1]) != pixel_digest(cat[:, 1:])


def test_perceptual_hashes_are_close_for_copies_and_far_for_other_photos(pictures):
    for kind in ("phash", "dhash"):
        hashes = {name: perceptual_hash(kind, fitted(p)) for name, p in pictures.items()}
        for name, pixels in pictures.items():
            half = np.asarray(Image.fromarray(pixels).resize((pixels.shape[1] // 2, pixels.shape[0] // 2)))
            assert hamming(perceptual_hash(kind, fitted(reencoded(pixels, "JPEG", quality=50))), hashes[name]) <= 4
            assert hamming(perceptual_hash(kind, fitted(half)), hashes[name]) <= 4
        for a, b in itertools.combinations(hashes.values(), 2):
            assert hamming(a, b) >= 16


def test_hashes_are_64_bit_ints_and_deterministic(pictures):
    frame = fitted(pictures["coffee"])
    for fn in (phash, dhash):
        value = fn(frame)
        assert isinstance(value, int) and 0 <= value < 1 << 64
        assert fn(frame.copy()) == value
    assert phash(frame) != dhash(frame)
