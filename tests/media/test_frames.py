import numpy as np
import pytest
from PIL import Image

from lvm_data.items import ItemRef, Part
from lvm_data.media.clips import ClipSpec
from lvm_data.media.contract import DecodeSettings
from lvm_data.media.decode import decode_item
from lvm_data.media.frame_folders import decode_frame_folder, key_function, list_frames, natural_sorted
from lvm_data.media.parts import ClipPart, SequencePart, ViewsPart
from lvm_data.outcomes import ItemError, Reason


def shade(i):
    return np.full((20, 30, 3), (i * 10) % 256, np.uint8)


def write_frames(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(shade(i)).save(folder / name)


def test_natural_sort_puts_frame2_before_frame10():
    names = ["frame10.png", "frame2.png", "frame1.png", "Frame3.png", "frame_b9.png", "frame_b10.png"]
    assert natural_sorted(names) == [
        "frame1.png",
        "frame2.png",
        "Frame3.png",
        "frame10.png",
        "frame_b9.png",
        "frame_b10.png",
    ]


def test_frame_folder_is_sampled_in_natural_order(tmp_path):
    names = [f"frame{i}.png" for i in range(12)]  # shade i belongs to frame i
    write_frames(tmp_path / "clip", names)
    (tmp_path / "clip" / "notes.txt").write_text("not a frame")
    (tmp_path / "clip" / ".hidden.png").write_bytes(b"")
    assert [u.rsplit("/", 1)[-1] for u in list_frames(str(tmp_path / "clip"))] == names
    part = ClipPart(str(tmp_path / "clip"), spec=ClipSpec(frames=4, strides=(3,), offset="start"), key="clip")
    result = decode_frame_folder(part, 16)
    assert [c.indices for c in result.clips] == [(0, 3, 6, 9)]
    for i in (0, 3, 6, 9):
        assert result.uris[i].endswith(f"frame{i}.png")
        assert result.frames[i].shape == (16, 16, 3) and int(result.frames[i][0, 0, 0]) == i * 10


def test_short_frame_folder_is_too_short(tmp_path):
    write_frames(tmp_path / "clip", [f"{i}.png" for i in range(15)])
    with pytest.raises(ItemError) as err:
        decode_frame_folder(ClipPart(str(tmp_path / "clip"), spec=ClipSpec(frames=16, strides=(1,))), 16)
    assert err.value.reason is Reason.TOO_SHORT and "15 frames" in err.value.detail


def test_frames_role_through_the_decode_table(tmp_path):
    write_frames(tmp_path / "clip", [f"f{i:03d}.jpg" for i in range(10)])
    part = ClipPart(str(tmp_path / "clip"), spec=ClipSpec(frames=5, strides=(2,), offset="start"), key="clip")
    item = decode_item(ItemRef("s", "clip", "u", {"frames": part}), DecodeSettings(image_size=16))
    assert [f.index for f in item.frames] == [0, 2, 4, 6, 8]
    assert item.info["frames"]["clips"] == [{"stride": 2, "start": 0, "length": 5}]


def test_sequence_matches_annotations_by_key_not_position(tmp_path):
    write_frames(tmp_path / "frames", [f"{i:04d}.jpg" for i in range(6)])
    masks = tmp_path / "masks"
    masks.mkdir()
    for i in (0, 1, 3, 4, 5):  # frame 2 has no mask: it must be skipped, not paired with mask 3
        Image.fromarray(np.full((20, 30), i, np.uint8), mode="L").save(masks / f"{i:04d}.png")
    part = SequencePart(
        str(tmp_path / "frames"),
        annotations=(("segmentation", str(masks), ()),),
        spec=ClipSpec(frames=5, strides=(1,)),
        key="seq",
    )
    item = decode_item(ItemRef("s", "seq", "u", {"sequence": part}), DecodeSettings(image_size=16))
    assert item.info["sequence"]["matched"] == 5 and item.info["sequence"]["frames"] == 6
    assert [f.role for f in item.frames] == ["image", "segmentation"] * 5
    images, annotations = item.frames[0::2], item.frames[1::2]
    assert [f.index for f in images] == [0, 1, 3, 4, 5]
    for image, annotation in zip(images, annotations, strict=True):
        assert annotation.uri.endswith(f"{image.index:04d}.png")


def test_match_pattern_keys():
    key = key_function(r"(\d+)")
    assert key("gs://b/rgb_0012.jpg") == "0012" and key("gs://b/none.jpg") is None
    assert key_function("")("a/b/frame_7.png") == "frame_7"


def test_views_are_decoded_in_the_given_order(tmp_path):
    write_frames(tmp_path / "obj", ["v0.png", "v1.png", "v2.png"])
    views = tuple(str(tmp_path / "obj" / n) for n in ("v2.png", "v0.png", "v1.png"))
    item = decode_item(
        ItemRef("s", "obj", "u", {"views": ViewsPart(views[0], views=views)}), DecodeSettings(image_size=8)
    )
    assert [f.uri for f in item.frames] == list(views) and [f.index for f in item.frames] == [0, 1, 2]
    assert [int(f.pixels[0, 0, 0]) for f in item.frames] == [20, 0, 10]


def test_a_missing_view_is_a_read_error(tmp_path):
    with pytest.raises(ItemError) as err:
        decode_item(ItemRef("s", "obj", "u", {"views": Part(str(tmp_path / "gone.png"))}), DecodeSettings())
    assert err.value.reason is Reason.READ_ERROR
