import io

import numpy as np
import pytest
from PIL import Image

from lvm_data.items import ItemRef, Part
from lvm_data.media import decode
from lvm_data.media.contract import DecodeSettings, PartFrames
from lvm_data.media.decode import decode_item
from lvm_data.media.samples import package_file
from lvm_data.outcomes import ItemError, Reason
from lvm_data.sources.listing import failed_ref
from lvm_data.testing import BROKEN_FILES, png_header_only


def png_bytes(width: int, height: int, color=(200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def ref(**parts) -> ItemRef:
    return ItemRef("s", "k", "u", parts)


def test_image_is_resized_and_original_size_recorded():
    item = decode_item(ref(image=Part("mem://a.png", data=png_bytes(40, 20))), DecodeSettings(image_size=16))
    (frame,) = item.frames
    assert frame.pixels.shape == (16, 16, 3) and frame.pixels.dtype == np.uint8
    assert (frame.uri, frame.index, frame.role) == ("mem://a.png", 0, "image")
    assert item.info == {"image": {"width": 40, "height": 20}}
    assert tuple(frame.pixels[8, 8]) == (200, 10, 10)


@pytest.mark.parametrize("policy", ["squash", "center_crop", "pad"])
def test_resize_policy_is_applied(policy):
    item = decode_item(ref(image=Part("x", data=png_bytes(32, 16))), DecodeSettings(image_size=16, resize=policy))
    corner = tuple(item.frames[0].pixels[0, 0])
    assert corner == ((0, 0, 0) if policy == "pad" else (200, 10, 10))


def test_reads_from_the_uri_when_no_inline_bytes(tmp_path):
    (tmp_path / "a.png").write_bytes(png_bytes(8, 8))
    item = decode_item(ref(image=Part(str(tmp_path / "a.png"))), DecodeSettings(image_size=8))
    assert item.frames[0].pixels.shape == (8, 8, 3)


@pytest.mark.parametrize(("name", "reason"), [(n, r) for n, (_, r) in BROKEN_FILES.items()])
def test_broken_files_fail_with_their_reason(name, reason):
    make, _ = BROKEN_FILES[name]
    photo = package_file("skimage", "chelsea.png").read_bytes()  # a real photo to truncate and corrupt
    with pytest.raises(ItemError) as err:
        decode_item(ref(image=Part(name, data=make(photo))), DecodeSettings(image_size=16))
    assert err.value.reason.value == reason and name in err.value.detail


def test_missing_file_is_a_read_error(tmp_path):
    with pytest.raises(ItemError) as err:
        decode_item(ref(image=Part(str(tmp_path / "gone.png"))), DecodeSettings())
    assert err.value.reason is Reason.READ_ERROR and "gone.png: file not found" in err.value.detail


def test_max_pixels_setting():
    with pytest.raises(ItemError) as err:
        decode_item(ref(image=Part("big", data=png_bytes(64, 64))), DecodeSettings(image_size=16, max_pixels=1000))
    assert err.value.reason is Reason.TOO_LARGE
    assert png_header_only(10, 10).startswith(b"\x89PNG")


def test_source_failures_and_items_without_parts():
    failed = failed_ref("s", "t.tar#<unreadable>", "u", "t.tar", Reason.TRUNCATED, "t.tar: ended early")
    with pytest.raises(ItemError) as err:
        decode_item(failed, DecodeSettings())
    assert (err.value.reason, err.value.detail) == (Reason.TRUNCATED, "t.tar: ended early")
    with pytest.raises(ItemError) as err:
        decode_item(ref(), DecodeSettings())
    assert err.value.reason is Reason.NOT_MEDIA


def test_unknown_role_is_an_internal_error_naming_the_known_roles():
    with pytest.raises(ItemError) as err:
        decode_item(ref(hologram=Part("h.bin", data=b"1")), DecodeSettings())
    assert err.value.reason is Reason.INTERNAL_ERROR and "image" in err.value.detail


def test_a_registered_role_decodes_in_part_order(monkeypatch):
    def gray(part, role, settings):
        from lvm_data.items import Frame

        return PartFrames([Frame(np.full((4, 6, 3), 7, np.uint8), part.uri, i, role) for i in range(2)], {"n": 2})

    monkeypatch.setitem(decode.DECODERS, "gray", gray)
    item = decode_item(ref(image=Part("a", data=png_bytes(8, 8)), gray=Part("g")), DecodeSettings(image_size=8))
    assert [(f.role, f.index) for f in item.frames] == [("image", 0), ("gray", 0), ("gray", 1)]
    assert item.frames[2].pixels.shape == (8, 8, 3) and item.info["gray"] == {"n": 2}


def test_bad_resize_policy_is_refused():
    with pytest.raises(ValueError, match="resize policy 'stretch'"):
        DecodeSettings(resize="stretch")


def no_memory(*args, **kwargs):
    raise MemoryError("cannot allocate 40 GiB")


@pytest.mark.parametrize("role", ["image", "video", "frames", "sequence", "depth", "segmentation"])
def test_a_memory_error_of_any_decoder_is_out_of_memory(monkeypatch, role):
    from lvm_data.job.steps import decode_guarded

    monkeypatch.setitem(decode.DECODERS, role, no_memory)
    parts = {} if role == "image" else {"image": Part("clips/photo.png", data=png_bytes(8, 8))}
    item = ItemRef("s", "clips/k", "u", {**parts, role: Part(f"clips/k.{role}")})
    outcome = decode_guarded(item, DecodeSettings(image_size=8))
    assert (outcome.status.value, outcome.reason) == ("failed", Reason.OUT_OF_MEMORY)
    assert outcome.detail.startswith(f"{item.uri}: no memory to decode item clips/k (cannot allocate 40 GiB)")
    assert "lower max_pixels or decode_workers in the job file" in outcome.detail


def test_a_memory_error_while_resizing_is_out_of_memory(monkeypatch):
    def gray(part, role, settings):
        from lvm_data.items import Frame

        return PartFrames([Frame(np.zeros((4, 4, 3), np.uint8), part.uri, 0, role)])

    monkeypatch.setitem(decode.DECODERS, "gray", gray)
    monkeypatch.setattr(decode, "resize", no_memory)  # fit: the decoder's frames to the tokenizer's size
    with pytest.raises(ItemError) as err:
        decode_item(ref(gray=Part("g")), DecodeSettings(image_size=8))
    assert err.value.reason is Reason.OUT_OF_MEMORY and err.value.detail.startswith("g: no memory to decode item k")
