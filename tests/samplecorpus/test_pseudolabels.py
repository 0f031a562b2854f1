import numpy as np
import pytest

from lvm_data.media.annotation_files import read_gray, read_label_map
from lvm_data.media.image import decode_image
from lvm_data.media.samples import package_file
from lvm_data.samplecorpus.pseudolabels import MAX_ID, edge_map, is_gray, png, superpixel_labels


def halves(height: int = 64, width: int = 96) -> np.ndarray:
    """Left half dark red, right half light blue: one vertical boundary at width // 2."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (150, 20, 20)
    image[:, width // 2 :] = (40, 120, 230)
    return image


def test_superpixels_follow_the_image_and_never_straddle_a_colour_boundary():
    image = halves()
    labels = superpixel_labels(image, segments=8)
    assert labels.shape == image.shape[:2] and labels.dtype == np.uint8
    assert 1 <= labels.min() and labels.max() <= MAX_ID
    left, right = set(np.unique(labels[:, :48])), set(np.unique(labels[:, 48:]))
    assert left and right and not left & right  # no superpixel holds both colours


def test_superpixels_of_a_large_photo_are_computed_small_and_returned_at_full_size():
    photo = decode_image(package_file("skimage", "retina.jpg").read_bytes())  # 1411 x 1411, above WORK_SIDE
    labels = superpixel_labels(photo)
    assert labels.shape == photo.shape[:2]
    assert 20 <= len(np.unique(labels)) <= MAX_ID
    assert np.array_equal(labels, superpixel_labels(photo))  # deterministic


def test_gray_photos_get_superpixels_on_their_intensity():
    gray = decode_image(package_file("skimage", "grass.png").read_bytes())
    assert is_gray(gray) and not is_gray(halves())
    assert len(np.unique(superpixel_labels(gray))) >= 20  # CIELAB on equal channels would give a handful


def test_edges_are_white_on_the_boundary_and_black_in_flat_regions():
    edges = edge_map(halves())
    assert set(np.unique(edges)) == {0, 255}
    assert edges[:, 45:51].any(axis=1).all()  # every row crosses the boundary
    assert not edges[:, :40].any() and not edges[:, 56:].any()


def test_pngs_read_back_as_the_annotation_readers_expect():
    labels = superpixel_labels(halves(), segments=8)
    assert np.array_equal(read_label_map(png(labels), "seg.png"), labels)  # ids, not colours
    edges = edge_map(halves())
    assert np.array_equal(read_gray(png(edges), "edges.png"), edges / 255.0)
    assert decode_image(png(halves())).tolist() == halves().tolist()
    assert png(labels) == png(labels.copy())
    with pytest.raises(ValueError, match="uint8"):
        png(labels.astype(np.int32))
