import numpy as np
import pytest

from lvm_data.media.derive import box_mask, canny_edges, grayscale, inpaint_input, patch_mask
from lvm_data.media.image import decode_image
from lvm_data.media.resize import resize
from lvm_data.media.samples import photos
from lvm_data.sentences.base import rng_for


@pytest.fixture(scope="module")
def photo():
    return resize(decode_image(photos("heldout")[0].read_bytes()), 64)  # chelsea the cat


def test_grayscale_has_equal_channels_and_keeps_luma(photo):
    gray = grayscale(photo)
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    luma = photo.astype(float) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(gray[..., 0] - luma).max() <= 1.0


def test_masks_are_seeded():
    a = box_mask(64, rng_for(0, "x"))
    assert np.array_equal(a, box_mask(64, rng_for(0, "x"))) and not np.array_equal(a, box_mask(64, rng_for(0, "y")))
    assert 0 < a.mean() < 1
    patches = patch_mask(64, rng_for(1, "x"), patch=16, ratio=0.5)
    cells = patches.reshape(4, 16, 4, 16).transpose(0, 2, 1, 3).reshape(16, -1)
    assert all(cell.all() or not cell.any() for cell in cells)  # whole cells only
    with pytest.raises(ValueError):
        patch_mask(64, rng_for(0, "x"), ratio=1.5)


def test_inpainting_input_is_black_only_where_masked(photo):
    masked = inpaint_input(photo, rng_for(0, "cat"), "patches", patch=8, ratio=0.3)
    hidden = (masked == 0).all(axis=2) & (photo != 0).any(axis=2)
    assert 0.1 < hidden.mean() < 0.5
    assert np.array_equal(masked[~hidden], photo[~hidden])
    with pytest.raises(ValueError, match="mask"):
        inpaint_input(photo, rng_for(0, "cat"), "circles")


def test_canny_edges_on_a_real_photo(photo):
    edges = canny_edges(photo)
    assert set(np.unique(edges)) <= {0, 255} and 0.01 < (edges[..., 0] > 0).mean() < 0.5
    assert (canny_edges(np.full((32, 32, 3), 128, np.uint8)) == 0).all()
