import io
import json

import numpy as np
import pytest
from PIL import Image

from lvm_data.items import ItemRef, Part
from lvm_data.media.annotation_decoders import shapes_agree
from lvm_data.media.clips import ClipSpec
from lvm_data.media.contract import DecodeSettings, ImageGrid
from lvm_data.media.decode import decode_item
from lvm_data.media.palette import load_palette
from lvm_data.media.parts import AnnotationPart, SequencePart, options_tuple
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
    decoded = decode_item(
        item(segmentation=Part(save(tmp_path / "m.png", mask))), DecodeSettings(image_size=32, resize=policy)
    )
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
    decoded = decode_item(
        item(target=Part(target), normals=Part(str(tmp_path / "n.npy")), edges=Part(edges)),
        DecodeSettings(image_size=16),
    )
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


def npy(path, array):
    np.save(path, array)
    return str(path)


def test_a_transposed_depth_map_fails_naming_both_files_and_sizes(tmp_path):
    photo = save(tmp_path / "photo.png", Image.new("RGB", (192, 128), (70, 80, 90)))  # 192 wide, 128 high
    depth = npy(tmp_path / "d.npy", np.linspace(1, 5, 192 * 128, dtype=np.float32).reshape(192, 128))
    with pytest.raises(ItemError) as err:
        decode_item(item(image=Part(photo), depth=Part(depth)), DecodeSettings(image_size=32))
    assert err.value.reason is Reason.BAD_ANNOTATION
    detail = err.value.detail
    assert depth in detail and photo in detail and "128x192" in detail and "192x128" in detail
    assert "image's size" in detail


@pytest.mark.parametrize("policy", ["squash", "center_crop", "pad"])
def test_half_resolution_labels_land_where_full_resolution_ones_do(tmp_path, policy):
    photo = save(tmp_path / "photo.png", Image.new("RGB", (96, 64), (70, 80, 90)))
    half = np.zeros((32, 48), np.uint8)
    half[5:20, 10:30], half[25:, 40:] = 3, 7
    full = np.kron(half, np.ones((2, 2), np.uint8))  # the same labels at the image's size
    settings = DecodeSettings(image_size=32, resize=policy)
    got = {}
    for name, ids in (("half", half), ("full", full)):
        mask = save(tmp_path / f"{name}.png", Image.fromarray(ids, mode="L"))
        got[name] = decode_item(item(image=Part(photo), segmentation=Part(mask)), settings).frames[1].pixels
    assert np.array_equal(got["half"], got["full"])


def test_an_aspect_ratio_within_one_percent_is_stretched_onto_the_image(tmp_path):
    photo = save(tmp_path / "photo.png", Image.new("RGB", (162, 121), (70, 80, 90)))  # ScanNet's 1296x968 / 8
    depth = npy(tmp_path / "d.npy", np.tile(np.linspace(1, 9, 80, dtype=np.float32), (60, 1)))  # 640x480 / 8
    settings = DecodeSettings(image_size=32, resize="center_crop")
    decoded = decode_item(item(image=Part(photo), depth=Part(depth)), settings)
    assert decoded.info["depth"]["width"] == 80 and decoded.frames[1].pixels.shape == (32, 32, 3)
    mask = save(tmp_path / "m.png", Image.fromarray(np.ones((60, 83), np.uint8), mode="L"))  # 3 % wider
    with pytest.raises(ItemError) as err:
        decode_item(item(image=Part(photo), segmentation=Part(mask)), settings)
    assert err.value.reason is Reason.BAD_ANNOTATION and "83x60" in err.value.detail


def test_the_tolerance_rule():
    grid = ImageGrid("i.png", 480, 640)
    assert shapes_agree(480, 640, grid) and shapes_agree(240, 320, grid) and shapes_agree(120, 160, grid)
    assert shapes_agree(968, 1296, grid)  # 0.4 % off
    assert shapes_agree(61, 80, ImageGrid("i.png", 121, 160))  # a halved odd height rounds up
    assert not shapes_agree(640, 480, grid) and not shapes_agree(480, 660, grid)


def test_pose_and_box_frames_and_targets_are_checked_against_the_image(tmp_path):
    photo = save(tmp_path / "photo.png", Image.new("RGB", (80, 60), (70, 80, 90)))
    keypoints = [40, 30, 2] * 17
    settings = DecodeSettings(image_size=32)
    frames = {}
    for name, (width, height, scale) in {"full": (80, 60, 1), "half": (40, 30, 0.5), "wrong": (60, 80, 1)}.items():
        doc = {
            "width": width,
            "height": height,
            "annotations": [{"keypoints": [v * scale if i % 3 < 2 else v for i, v in enumerate(keypoints)]}],
        }
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
        part = AnnotationPart(str(tmp_path / f"{name}.json"), image=Part(photo))
        try:
            frames[name] = decode_item(item(image=Part(photo), pose=part), settings).frames[1].pixels
        except ItemError as err:
            frames[name] = err
    assert np.array_equal(frames["full"], frames["half"])  # coordinates in a half-size frame, same drawing
    assert frames["wrong"].reason is Reason.BAD_ANNOTATION and "60x80" in frames["wrong"].detail
    target = save(tmp_path / "t.png", Image.new("RGB", (60, 80), (200, 10, 10)))
    with pytest.raises(ItemError) as err:
        decode_item(item(image=Part(photo), target=Part(target)), settings)
    assert err.value.reason is Reason.BAD_ANNOTATION and target in err.value.detail


def test_a_sequence_annotation_of_the_wrong_shape_fails_the_sequence(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(4):
        Image.new("RGB", (30, 20), (i * 10, 0, 0)).save(frames / f"{i:04d}.png")
        Image.fromarray(np.zeros((30, 20) if i == 2 else (10, 15), np.uint8), mode="L").save(masks / f"{i:04d}.png")
    part = SequencePart(
        str(frames), annotations=(("segmentation", str(masks), ()),), spec=ClipSpec(frames=4, strides=(1,)), key="seq"
    )
    with pytest.raises(ItemError) as err:
        decode_item(ItemRef("s", "seq", "u", {"sequence": part}), DecodeSettings(image_size=16))
    assert err.value.reason is Reason.BAD_ANNOTATION and "0002.png" in err.value.detail
