import cv2
import numpy as np
import pytest

from lvm_data.media.annotation_files import read_depth
from lvm_data.media.annotation_render import (
    OPENPOSE_COLORS,
    DepthStyle,
    colormap_lut,
    render_boxes,
    render_color_mask,
    render_depth,
    render_edges,
    render_normals,
    render_pose,
    render_segmentation,
)
from lvm_data.media.geometry import Fit
from lvm_data.media.image import decode_image
from lvm_data.media.palette import load_palette
from lvm_data.media.resize import resize
from lvm_data.media.samples import stereo_pair
from lvm_data.outcomes import ItemError, Reason

PALETTE = load_palette()


def colours(rgb):
    return {tuple(c) for c in rgb.reshape(-1, 3)}


@pytest.mark.parametrize("policy", ["squash", "center_crop", "pad"])
def test_segmentation_uses_only_palette_colours_after_resizing(policy):
    ids = np.zeros((97, 131), np.int64)
    ids[10:50, 20:90], ids[60:, :40], ids[:5, :] = 1, 300, 255
    rgb = render_segmentation(ids, Fit.of(97, 131, 64, policy))
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    assert colours(rgb) <= {tuple(PALETTE[i]) for i in (0, 1, 255, 300)}  # nearest: no blended colours
    assert tuple(PALETTE[300]) in colours(rgb)


def test_segmentation_rejects_ids_outside_the_palette():
    with pytest.raises(ItemError) as err:
        render_segmentation(np.array([[-1, 2]]), Fit.of(1, 2, 8), name="mask.png")
    assert err.value.reason is Reason.BAD_ANNOTATION and "mask.png" in err.value.detail


def test_colour_masks_keep_their_colours():
    mask = np.zeros((40, 40, 3), np.uint8)
    mask[:20] = (10, 200, 30)
    assert colours(render_color_mask(mask, Fit.of(40, 40, 17))) == {(0, 0, 0), (10, 200, 30)}


def test_real_disparity_renders_near_bright_and_invalid_black():
    left, _, disp = stereo_pair()
    disparity = read_depth(disp.read_bytes(), disp.name)
    fit = Fit.of(*disparity.shape, 128)
    gray = render_depth(disparity, fit, DepthStyle("disparity", colormap="gray"))[..., 0].astype(float)
    reference = cv2.resize(np.nan_to_num(disparity, nan=0).astype(np.float32), (128, 128), interpolation=cv2.INTER_AREA)
    valid = gray > 0
    assert 0.8 < valid.mean() < 0.99  # occluded pixels (inf) are black
    corr = np.corrcoef(gray[valid], reference[valid])[0, 1]
    assert corr > 0.9  # brightness follows disparity: near is bright
    inferno = render_depth(disparity, fit, DepthStyle("disparity"))
    assert colours(inferno[valid]) <= {tuple(c) for c in colormap_lut("inferno")}
    image = resize(decode_image(left.read_bytes()), 128)
    assert image.shape == inferno.shape  # the annotation is placed like its image


def test_depth_display_modes_reverse_the_order():
    depth = np.tile(np.linspace(1.0, 10.0, 32), (8, 1))
    fit = Fit.of(8, 32, 32)
    inverse = render_depth(depth, fit, DepthStyle(colormap="gray"))[0, :, 0].astype(int)
    linear = render_depth(depth, fit, DepthStyle(display="linear", colormap="gray"))[0, :, 0].astype(int)
    assert inverse[0] > inverse[-1] and linear[0] < linear[-1]


def test_depth_full_of_nan_is_a_bad_annotation_and_constant_depth_renders():
    with pytest.raises(ItemError) as err:
        render_depth(np.full((10, 10), np.nan), Fit.of(10, 10, 16), name="nan.npy")
    assert err.value.reason is Reason.BAD_ANNOTATION and "nan.npy" in err.value.detail
    flat = render_depth(np.full((10, 10), 3.0), Fit.of(10, 10, 16), DepthStyle(colormap="gray"))
    assert len(colours(flat)) == 1


def test_normals_encoding():
    normals = np.zeros((2, 2, 3))
    normals[0, 0], normals[0, 1], normals[1, 0] = (0, 0, 1), (1, 0, 0), (0, -1, 0)
    normals[1, 1] = np.nan
    rgb = render_normals(normals, Fit.of(2, 2, 2))
    assert rgb[0, 0].tolist() == [128, 128, 255] and rgb[0, 1].tolist() == [255, 128, 128]
    assert rgb[1, 0].tolist() == [128, 0, 128] and rgb[1, 1].tolist() == [0, 0, 0]


def test_edges_are_white_on_black():
    strength = np.zeros((32, 32))
    strength[:, 16] = 1.0
    rgb = render_edges(strength, Fit.of(32, 32, 32))
    assert rgb[5, 16].tolist() == [255, 255, 255] and rgb[5, 3].tolist() == [0, 0, 0]


def person(points):
    keypoints = np.zeros((17, 3))
    for index, (x, y) in points.items():
        keypoints[index] = (x, y, 2)
    return keypoints


def test_pose_draws_openpose_limbs_where_the_joints_are():
    # right shoulder (COCO 6) at (20, 20), right elbow (COCO 8) at (20, 60), in a 100x100 image
    someone = person({6: (20, 20), 8: (20, 60)})
    rgb = render_pose([someone], Fit.of(100, 100, 100))
    assert tuple(rgb[40, 20]) == OPENPOSE_COLORS[2]  # limb 2 = right shoulder -> right elbow
    assert rgb[40, 70].tolist() == [0, 0, 0] and rgb[90, 90].tolist() == [0, 0, 0]
    nobody = render_pose([person({})], Fit.of(100, 100, 100))
    assert nobody.max() == 0  # unlabelled joints are not drawn


def test_pose_over_the_image_keeps_the_image_elsewhere():
    background = np.full((64, 64, 3), 90, np.uint8)
    rgb = render_pose([person({5: (10, 10), 6: (50, 10)})], Fit.of(64, 64, 64), background)
    assert rgb[60, 60].tolist() == [90, 90, 90] and tuple(rgb[10, 30]) != (90, 90, 90)


def test_boxes_are_drawn_in_their_class_colour():
    rgb = render_boxes([(10, 10, 50, 40, 3)], Fit.of(100, 100, 100))
    assert tuple(rgb[10, 30]) == tuple(PALETTE[3]) and rgb[25, 30].tolist() == [0, 0, 0]
    named = render_boxes([(10, 10, 50, 40, "dog")], Fit.of(100, 100, 100))
    assert named[10, 30].any()
