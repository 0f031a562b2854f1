import numpy as np
import pytest

from lvm_data.determinism import rng_for
from lvm_data.media.derive import box_mask, canny_edges, grayscale, inpaint_input, lvm_mask, patch_mask
from lvm_data.media.image import decode_image
from lvm_data.media.resize import resize
from lvm_data.media.samples import photos


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


def test_lvm_masks_follow_lvm_s_distribution():
    """LVM's tokenize_inpainting_dataset_muse.py: 30 % one square hole of side U[0.1, 0.5) x 256, else a
    32-px cell grid hiding each cell with probability 1 - U(0, 1): hidden share mean 0.38, 5-95 % 0.02-0.94."""
    masks = [lvm_mask(256, rng_for(0, "inpainting", f"img{i}")) for i in range(3000)]
    shares = np.array([m.mean() for m in masks])
    squares = [m for m in masks if _is_one_square(m)]
    assert 0.26 < len(squares) / len(masks) < 0.34
    sides = np.array([int(m.any(axis=0).sum()) for m in squares])
    assert sides.min() >= 25 and sides.max() < 128
    assert abs(shares.mean() - 0.38) < 0.02
    low, high = np.percentile(shares, [5, 95])
    assert 0.0 <= low < 0.05 and 0.9 < high <= 0.97
    grids = [m for m in masks if not _is_one_square(m)]
    cells = grids[0].reshape(8, 32, 8, 32).transpose(0, 2, 1, 3).reshape(64, -1)
    assert all(cell.all() or not cell.any() for cell in cells)  # whole 32-px cells
    assert np.array_equal(lvm_mask(256, rng_for(0, "k")), lvm_mask(256, rng_for(0, "k")))  # seeded by the key


def _is_one_square(mask: np.ndarray) -> bool:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return False
    box = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return box.all() and box.shape[0] == box.shape[1] and mask.sum() == box.size and box.shape[0] % 32 != 0
