import numpy as np

from lvm_data.curation.config import Bounds, LowVariance
from lvm_data.curation.images import check_bounds, check_variance, original_size
from lvm_data.outcomes import Reason, Status

from .media import image_item


def test_bounds_judge_the_original_size(pictures):
    cat = pictures["chelsea"]  # 451 x 300
    assert original_size(image_item("cat", cat)) == (451, 300)
    assert check_bounds(image_item("cat", cat), Bounds()) is None
    small = check_bounds(image_item("small", cat, size=(100, 40)), Bounds())
    assert small.status is Status.FILTERED and small.reason is Reason.TOO_SMALL
    assert "100x40: shorter side 40 < min_side 64" in small.detail
    area = check_bounds(image_item("area", cat, size=(300, 200)), Bounds(min_side=0, min_area=100_000))
    assert area.reason is Reason.TOO_SMALL and "area 60000 < min_area 100000" in area.detail
    wide = check_bounds(image_item("wide", cat, size=(1000, 250)), Bounds())
    assert wide.reason is Reason.BAD_ASPECT and "aspect 4.00 > max_aspect 3" in wide.detail
    assert check_bounds(image_item("wide", cat, size=(1000, 250)), Bounds(max_aspect=0)) is None


def test_low_variance_removes_blank_and_near_blank_but_keeps_photos(pictures):
    blank = check_variance(image_item("blank", np.full((80, 80, 3), 30, np.uint8)), LowVariance())
    assert blank.reason is Reason.LOW_VARIANCE and "luma std 0.00 < min_std 4" in blank.detail
    white = np.full((256, 256, 3), 250, np.uint8)
    white[100:120, 100:140] = 0  # a small dark mark: std is high, but the image is nearly all one shade
    near_blank = check_variance(image_item("mark", white), LowVariance())
    assert near_blank.reason is Reason.LOW_VARIANCE and "of pixels one shade" in near_blank.detail
    for name, pixels in pictures.items():
        assert check_variance(image_item(name, pixels), LowVariance()) is None, name
    noise = np.random.default_rng(0).integers(100, 104, (64, 64, 3)).astype(np.uint8)
    assert check_variance(image_item("noise", noise), LowVariance(max_uniform=1.0)).reason is Reason.LOW_VARIANCE
