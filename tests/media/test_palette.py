import numpy as np
import pytest

from lvm_data.media.palette import ENTRIES, build_palette_v1, load_palette, srgb_to_lab


def test_shipped_palette_is_exactly_what_the_v1_rules_generate():
    shipped = load_palette("v1")
    assert shipped.shape == (ENTRIES, 3) and shipped.dtype == np.uint8
    assert np.array_equal(shipped, build_palette_v1())
    assert not shipped.flags.writeable


def test_palette_v1_conventions():
    palette = load_palette()
    assert palette[0].tolist() == [0, 0, 0] and palette[255].tolist() == [255, 255, 255]
    assert len({tuple(c) for c in palette[:256]}) == 256  # 8-bit classes are all distinct
    assert (palette[256:].max(axis=1) > 0).all()  # no 16-bit class is black like the background
    for classes, gap in ((21, 35.0), (151, 15.0)):  # VOC and ADE20K sized datasets stay far apart in CIELAB
        lab = srgb_to_lab(palette[:classes].astype(np.float64))
        distances = np.sqrt(((lab[:, None] - lab[None]) ** 2).sum(axis=2)) + np.eye(classes) * 1e9
        assert distances.min() > gap


def test_unknown_version_is_refused():
    with pytest.raises(ValueError, match="v1"):
        load_palette("v0")
