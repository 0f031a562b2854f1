import numpy as np
import pytest
from PIL import Image

from lvm_data.media.resize import resize


def bands(height: int, width: int) -> np.ndarray:
    """Red left third, green middle, blue right third."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 3, 0] = 255
    image[:, width // 3 : 2 * width // 3, 1] = 255
    image[:, 2 * width // 3 :, 2] = 255
    return image


def test_squash_is_pillow_bicubic_to_a_square_without_crop():
    image = bands(60, 300)
    out = resize(image, 32, "squash")
    np.testing.assert_array_equal(out, np.asarray(Image.fromarray(image).resize((32, 32), Image.BICUBIC)))
    assert out[16, 2, 0] == 255 and out[16, 16, 1] == 255 and out[16, 29, 2] == 255  # all three bands kept


def test_center_crop_keeps_the_middle_of_the_long_side():
    out = resize(bands(60, 300), 32, "center_crop")
    assert out.shape == (32, 32, 3)
    assert (out[:, :, 1] == 255).all() and out[:, :, 0].max() == 0 and out[:, :, 2].max() == 0
    tall = resize(bands(60, 300).transpose(1, 0, 2).copy(), 32, "center_crop")  # bands along the height
    assert (tall[:, :, 1] == 255).all()


def test_pad_keeps_everything_and_centres_it_on_black():
    out = resize(np.full((50, 200, 3), 200, np.uint8), 32, "pad")  # 4:1 -> 32 x 8 content
    rows = np.flatnonzero(out[:, 16, 0])
    assert (rows.min(), rows.max()) == (12, 19)
    assert out[:12].max() == 0 and out[20:].max() == 0 and (out[12:20] == 200).all()


def test_already_square_images_pass_through_unchanged():
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for policy in ("squash", "center_crop", "pad"):
        np.testing.assert_array_equal(resize(image, 32, policy), image)


def test_tiny_images_are_upscaled():
    for policy in ("squash", "center_crop", "pad"):
        assert resize(np.full((1, 3, 3), 9, np.uint8), 16, policy).shape == (16, 16, 3)


def test_bad_policy_and_bad_arrays_are_refused():
    with pytest.raises(ValueError, match="resize policy 'stretch' is not one of squash, center_crop, pad"):
        resize(np.zeros((4, 4, 3), np.uint8), 2, "stretch")
    with pytest.raises(ValueError, match=r"non-empty \(H, W, 3\) uint8 RGB image, got float32"):
        resize(np.zeros((4, 4, 3), np.float32), 2)
    with pytest.raises(ValueError, match=r"got uint8 \(4, 4\)"):
        resize(np.zeros((4, 4), np.uint8), 2)
