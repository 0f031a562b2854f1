import io
import json

import numpy as np
import pytest
from PIL import Image

from lvm_data.items import ItemRef, Part
from lvm_data.media.decode import DecodeSettings, decode_item
from lvm_data.media.palette import load_palette
from lvm_data.media.parts import AnnotationPart, options_tuple
from lvm_data.media.resize import resize
from lvm_data.media.samples import stereo_pair
from lvm_data.outcomes import ItemError, Reason


def item(**parts):
    return ItemRef("src", "k", "u", parts)


def save(path, image):
    image.save(path)
    return str(path)


def test_real_stereo_pair_with_its_disparity_as_depth():
    left, _, disp = stereo_pair()
    depth = AnnotationPart(str(disp), options=options_tuple({"encoding": "disparity", "colormap": "gray"}))
    decoded = decode_item(item(image=Part(str(left)), depth=depth), DecodeSettings(image_size=64))
    image, rendered = decoded.frames
    assert (image.role, rendered.role) == ("image", "depth")
    assert rendered.pixels.shape == (64, 64, 3) and rendered.uri == str(disp)
    assert decoded.info["depth"]["width"] == 741 and decoded.info["depth"]["valid_fraction"] < 1.0


@pytest.mark.parametrize("policy", ["squash", "center_crop", "pad"])
def test_palette_png_segmentation_stays_in_the_palette_under_every_policy(tmp_path, policy):
    ids = np.zeros((60, 90), np.uint8)
    ids[10:40, 20:70] = 5
    mask = Image.fromarray(ids, mode="P")
    mask.putpalette([0, 0, 0] * 5 + [1, 2, 3] + [0] * (256 * 3 - 18))  # the file's own colours are ignored
    decoded = decode_item(item(segmentation=Part(save(tmp_path / "m.png", mask))),
                          DecodeSettings(image_size=32, resize=policy))
    palette = load_palette()
    found = {tuple(c) for c in decoded.frames[0].pixels.reshape(-1, 3)}
    assert found == {tuple(palette[0]), tuple(palette[5])}


def test_pose_needs_a_coordinate_frame(tmp_path):
    keypoints = [30, 30, 2] * 17
    (tmp_path / "p.json").write_text(json.dumps({"keypoints": keypoints}))
    with pytest.raises(ItemError) as err:
        decode_item(item(pose=AnnotationPart(str(tmp_path / "p.json"))), DecodeSettings(image_size=32))
    assert err.value.reason is Reason.BAD_ANNOTATION and "width and height" in err.value.detail
    photo = save(tmp_path / "photo.png", Image.new("RGB", (80, 60), (70, 80, 90)))
    part = AnnotationPart(str(tmp_path / "p.json"), image=Part(photo))
    decoded = decode_item(item(image=Part(photo), pose=part), DecodeSettings(image_size=32))
    assert decoded.info["pose"]["width"] == 80 and decoded.info["pose"]["people"] == 1


def test_pose_overlay_draws_over_the_resized_image(tmp_path):
    photo = save(tmp_path / "photo.png", Image.new("RGB", (64, 64), (70, 80, 90)))
    doc = {"width": 64, "height": 64, "annotations": [{"keypoints": [10, 10, 2] * 5 + [0, 0, 0] * 12}]}
    (tmp_path / "p.json").write_text(json.dumps(doc))
    part = AnnotationPart(str(tmp_path / "p.json"), options=options_tuple({"overlay": True}), image=Part(photo))
    frame = decode_item(item(pose=part), DecodeSettings(image_size=64)).frames[0]
    assert frame.pixels[50, 50].tolist() == [70, 80, 90] and frame.pixels[10, 10].tolist() != [70, 80, 90]


def test_target_and_normals_and_edges_roles(tmp_path):
    target = save(tmp_path / "t.png", Image.new("RGB", (40, 20), (200, 10, 10)))
    out = io.BytesIO()
    np.save(out, np.dstack([np.zeros((8, 8)), np.zeros((8, 8)), np.ones((8, 8))]).astype(np.float32))
    (tmp_path / "n.npy").write_bytes(out.getvalue())
    edges = save(tmp_path / "e.png", Image.fromarray(np.eye(16, dtype=np.uint8) * 255, mode="L"))
    decoded = decode_item(item(target=Part(target), normals=Part(str(tmp_path / "n.npy")), edges=Part(edges)),
                          DecodeSettings(image_size=16))
    rgb = {f.role: f.pixels for f in decoded.frames}
    assert np.array_equal(rgb["target"], resize(np.asarray(Image.open(target)), 16))
    assert rgb["normals"][3, 3].tolist() == [128, 128, 255]
    assert rgb["edges"][5, 5].tolist() == [255, 255, 255] and rgb["edges"][5, 0].tolist() == [0, 0, 0]


def test_depth_full_of_nan_fails_the_item(tmp_path):
    out = io.BytesIO()
    np.save(out, np.full((8, 8), np.nan, np.float32))
    (tmp_path / "d.npy").write_bytes(out.getvalue())
    with pytest.raises(ItemError) as err:
        decode_item(item(depth=Part(str(tmp_path / "d.npy"))), DecodeSettings(image_size=16))
    assert err.value.reason is Reason.BAD_ANNOTATION
