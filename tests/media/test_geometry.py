import numpy as np
import pytest

from lvm_data.media.geometry import Fit, fit_array, nearest
from lvm_data.media.resize import resize


@pytest.mark.parametrize("policy", ["squash", "center_crop", "pad"])
@pytest.mark.parametrize("shape", [(90, 160), (160, 90), (64, 64), (300, 301)])
def test_label_placement_matches_the_image_resize(policy, shape):
    """A white block in an image and the same block in a label map land on the same output pixels."""
    height, width = shape
    image = np.zeros((height, width, 3), np.uint8)
    labels = np.zeros((height, width), np.int64)
    top, left = height // 3, width // 4
    image[top : top + height // 3, left : left + width // 2] = 255
    labels[top : top + height // 3, left : left + width // 2] = 7
    fit = Fit.of(height, width, 64, policy)
    placed = fit_array(labels, fit, nearest)
    resized = resize(image, 64, policy)[..., 0]
    assert placed.shape == (64, 64)
    assert set(np.unique(placed)) <= {0, 7}
    inside, outside = resized[placed == 7], resized[placed == 0]
    assert inside.mean() > 200 and outside.mean() < 40


def test_points_follow_the_policy():
    fit = Fit.of(100, 200, 50, "pad")  # scaled to 50x25, 12 rows of padding on top
    assert fit.point(0, 0) == (0, 12) and fit.point(200, 100) == (50, 37)
    crop = Fit.of(100, 200, 50, "center_crop")  # scaled to 100x50, 25 columns cut on the left
    assert crop.point(100, 50) == (25, 25)
    assert Fit.of(100, 200, 50).point(100, 50) == (25, 25)


def test_nearest_keeps_ids():
    ids = np.array([[1, 2], [3, 65535]], dtype=np.int64)
    assert set(np.unique(nearest(ids, 7, 5))) == {1, 2, 3, 65535}
