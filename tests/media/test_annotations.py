import io
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from lvm_data.media.annotation_files import (
    load_array,
    read_boxes,
    read_depth,
    read_gray,
    read_keypoints,
    read_label_map,
    read_normals,
)
from lvm_data.media.samples import stereo_pair
from lvm_data.outcomes import ItemError, Reason


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def npy(array) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def pfm(array: np.ndarray) -> bytes:
    height, width = array.shape
    return b"Pf\n%d %d\n-1.0\n" % (width, height) + np.flipud(array).astype("<f4").tobytes()


def test_palette_png_masks_are_read_as_indices_not_colours():
    ids = np.array([[0, 1], [2, 1]], np.uint8)
    image = Image.fromarray(ids, mode="P")
    image.putpalette([0, 0, 0, 200, 10, 10, 10, 200, 10] + [0] * (256 * 3 - 9))
    assert read_label_map(png(image), "mask.png").tolist() == [[0, 1], [2, 1]]


def test_16_bit_and_8_bit_and_array_label_maps():
    ids = np.array([[0, 300], [65535, 7]], np.uint16)
    assert read_label_map(cv2.imencode(".png", ids)[1].tobytes(), "m.png").tolist() == ids.tolist()
    assert read_label_map(png(Image.fromarray(np.uint8([[3, 4]]), mode="L")), "m.png").tolist() == [[3, 4]]
    assert read_label_map(npy(np.int32([[1, 2]])), "m.npy").tolist() == [[1, 2]]
    assert read_label_map(png(Image.new("RGB", (2, 2), (9, 9, 9))), "color.png") is None
    with pytest.raises(ItemError) as err:
        read_label_map(npy(np.float32([[0.5]])), "m.npy")
    assert err.value.reason is Reason.BAD_ANNOTATION and "m.npy" in err.value.detail


def test_depth_invalid_values_become_nan():
    depth_mm = np.array([[0, 1000], [2000, 65535]], np.uint16)  # 0 = no measurement
    depth = read_depth(cv2.imencode(".png", depth_mm)[1].tobytes(), "d.png")
    assert np.isnan(depth[0, 0]) and depth[1, 0] == 2000
    floats = np.array([[np.nan, np.inf], [-1.0, 2.5]], np.float32)
    assert np.isnan(read_depth(npy(floats), "d.npy")).sum() == 3
    assert read_depth(pfm(np.float32([[1, 2], [3, 4]])), "d.pfm").tolist() == [[1, 2], [3, 4]]


def test_real_disparity_npz_loads():
    disparity = read_depth(stereo_pair()[2].read_bytes(), "motorcycle_disp.npz")
    assert disparity.shape == (500, 741)
    assert 0.01 < np.isnan(disparity).mean() < 0.2  # occlusions are stored as inf


def test_npz_with_several_arrays_needs_a_known_name():
    out = io.BytesIO()
    np.savez(out, a=np.ones((2, 2)), b=np.zeros((2, 2)))
    with pytest.raises(ItemError, match="npz holds"):
        load_array(out.getvalue(), "two.npz")
    out = io.BytesIO()
    np.savez(out, depth=np.ones((2, 2)), other=np.zeros((2, 2)))
    assert load_array(out.getvalue(), "d.npz").tolist() == [[1, 1], [1, 1]]


def test_normals_from_arrays_and_images():
    xyz, encoded = read_normals(npy(np.zeros((2, 2, 3), np.float32)), "n.npy")
    assert not encoded and xyz.shape == (2, 2, 3)
    sixteen = np.full((2, 2, 3), 65535, np.uint16)
    pixels, encoded = read_normals(cv2.imencode(".png", sixteen)[1].tobytes(), "n.png")
    assert encoded and pixels.dtype == np.uint8 and pixels.max() == 255
    with pytest.raises(ItemError):
        read_normals(npy(np.zeros((2, 2), np.float32)), "n.npy")


def test_edges_are_scaled_to_unit_range():
    assert read_gray(png(Image.fromarray(np.uint8([[0, 255]]), mode="L")), "e.png").tolist() == [[0.0, 1.0]]


def test_keypoints_in_every_accepted_layout():
    person = [10, 20, 2] * 17
    coco = {"images": [{"width": 640, "height": 480}], "annotations": [{"keypoints": person}]}
    shapes = read_keypoints(json.dumps(coco).encode(), "p.json")
    assert (shapes.width, shapes.height) == (640, 480) and shapes.items[0].shape == (17, 3)
    assert len(read_keypoints(json.dumps([{"keypoints": person}] * 2).encode(), "p.json").items) == 2
    assert read_keypoints(json.dumps(person).encode(), "p.json").width is None
    with pytest.raises(ItemError) as err:
        read_keypoints(json.dumps({"keypoints": [1, 2, 3]}).encode(), "p.json")
    assert err.value.reason is Reason.BAD_ANNOTATION and "17" in err.value.detail


def test_boxes_xywh_and_xyxy():
    doc = json.dumps([{"bbox": [10, 20, 30, 40], "category_id": 3}]).encode()
    assert read_boxes(doc, "b.json").items == [(10, 20, 40, 60, 3)]
    assert read_boxes(doc, "b.json", "xyxy").items == [(10, 20, 30, 40, 3)]


def test_empty_and_garbage_files():
    with pytest.raises(ItemError) as err:
        read_depth(b"", "d.png")
    assert err.value.reason is Reason.EMPTY_FILE
    for reader in (read_depth, read_label_map, read_keypoints):
        with pytest.raises(ItemError) as err:
            reader(b"\x00garbage" * 10, "x.bin")
        assert err.value.reason is Reason.BAD_ANNOTATION
