"""Per-item limits and bounded working memory of still-image decoding (issue 15, memory).

Bytes: a part over `max_item_bytes` fails `file_too_large` without being read (a local file by its size, an
object-store file by a capped read, inline bytes by their length). Pixels: `max_pixels` from the header. Working
memory: compositing and high-depth scaling in uint8 row bands give exactly the whole-image formula's pixels, and
the decoder fits the Pillow image without a full-size numpy copy (same pixels as before). Memory figures
themselves come from `python benchmarks/hostile_memory.py` and tests/job/test_memory_limits.py.
"""

import io
import os
import time

import fsspec
import numpy as np
import pytest
from PIL import Image

from lvm_data import storage
from lvm_data.items import DEFAULT_MAX_ITEM_BYTES, ItemRef, Part
from lvm_data.media import image as image_module
from lvm_data.media.contract import DecodeSettings, read_part
from lvm_data.media.decode import decode_image_part, decode_item, item_memory_bound
from lvm_data.media.image import decode_image, load_image, scale_to_uint8
from lvm_data.media.resize import POLICIES, resize, resize_image
from lvm_data.outcomes import ItemError, Reason


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def reason_of(call) -> ItemError:
    with pytest.raises(ItemError) as caught:
        call()
    return caught.value


def test_a_local_file_over_the_limit_is_refused_from_its_size_without_reading(tmp_path, monkeypatch):
    big = tmp_path / "big.png"
    with open(big, "wb") as f:
        f.truncate(2**30)  # a sparse GiB: reading it would cost a GiB of memory
    opened = []

    class StatOnly:  # the local filesystem, except that opening a file is recorded
        def __init__(self, fs):
            self.fs = fs

        def get_file_info(self, path):
            return self.fs.get_file_info(path)

        def open_input_stream(self, path):
            opened.append(path)
            return self.fs.open_input_stream(path)

    real = storage.filesystem
    monkeypatch.setattr(storage, "filesystem", lambda uri: (StatOnly(real(uri)[0]), real(uri)[1]))
    err = reason_of(lambda: read_part(Part(str(big)), max_bytes=2**20))
    assert err.reason is Reason.FILE_TOO_LARGE and not opened
    assert f"{big}: 1073741824 bytes, over the limit of 1048576 bytes (max_item_bytes)" in err.detail
    assert "Raise max_item_bytes" in err.detail


def test_files_at_the_limit_are_read_whole(tmp_path):
    data = os.urandom(3 * 2**20 + 5)
    (tmp_path / "x.bin").write_bytes(data)
    assert read_part(Part(str(tmp_path / "x.bin")), max_bytes=len(data)) == data
    assert (
        reason_of(lambda: read_part(Part(str(tmp_path / "x.bin")), max_bytes=len(data) - 1)).reason
        is Reason.FILE_TOO_LARGE
    )


def test_an_object_store_file_is_read_at_most_one_byte_past_the_limit(monkeypatch):
    root = f"memory://limits{time.monotonic_ns()}"
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{root}/big.png".removeprefix("memory://"), bytes(3 * 2**20))
    fs.pipe(f"{root}/small.png".removeprefix("memory://"), b"12345")
    monkeypatch.setattr("lvm_data.media.contract.READ_CHUNK", 2**16)
    err = reason_of(lambda: read_part(Part(f"{root}/big.png"), max_bytes=2**20))
    assert err.reason is Reason.FILE_TOO_LARGE and "more bytes than that, over the limit of 1048576" in err.detail
    assert read_part(Part(f"{root}/small.png"), max_bytes=5) == b"12345"
    fs.rm(root.removeprefix("memory://"), recursive=True)


def test_inline_bytes_over_the_limit_and_the_job_setting():
    data = encode(Image.new("RGB", (8, 8)))
    err = reason_of(lambda: read_part(Part("t.tar#0.png", data), max_bytes=len(data) - 1))
    assert err.reason is Reason.FILE_TOO_LARGE and f"{len(data)} bytes" in err.detail
    item = ItemRef("s", "k", "u", {"image": Part("t.tar#0.png", data)})
    err = reason_of(lambda: decode_item(item, DecodeSettings(16, max_item_bytes=len(data) - 1)))
    assert err.reason is Reason.FILE_TOO_LARGE
    assert decode_item(item, DecodeSettings(16, max_item_bytes=len(data))).frames[0].pixels.shape == (16, 16, 3)
    assert DecodeSettings().max_item_bytes == DEFAULT_MAX_ITEM_BYTES == 256 * 2**20


def test_max_pixels_is_decided_from_the_header_before_any_pixel_is_decoded(monkeypatch):
    data = encode(Image.new("L", (300, 200)))
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", lambda self: pytest.fail("decoded"))
    err = reason_of(lambda: load_image(data, "wide.png", max_pixels=300 * 200 - 1))
    assert err.reason is Reason.TOO_LARGE and "300x200 pixels exceeds the limit of 59999" in err.detail


def test_item_memory_bound_is_bytes_plus_eight_bytes_a_pixel_plus_bands():
    settings = DecodeSettings(256, max_pixels=10**6, max_item_bytes=2**20)
    assert item_memory_bound(settings) == 2**20 + 8 * 10**6 + 32 * 2**20


def float_composite(rgba: np.ndarray) -> np.ndarray:
    """The float32 formula the decoder used over the whole image (64 bytes a pixel); the reference pixels."""
    pixels = rgba.astype(np.float32)
    alpha = pixels[..., 3:4] / 255.0
    return np.floor(pixels[..., :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)


@pytest.fixture
def small_bands(monkeypatch):
    monkeypatch.setattr(image_module, "BAND_PIXELS", 64)  # 64-pixel bands: a 37 x 23 image is 23 bands


def test_banded_uint8_composite_is_the_float_formula_for_every_colour_and_alpha(small_bands):
    value, alpha = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
    rgba = np.stack([value, 255 - value, value // 2, alpha], axis=-1)  # (256, 256, 4): every (c, a) pair
    np.testing.assert_array_equal(decode_image(encode(Image.fromarray(rgba, "RGBA")), "a.png"), float_composite(rgba))
    rng = np.random.default_rng(0)
    la = rng.integers(0, 256, (23, 37, 2), dtype=np.uint8)
    gray = float_composite(np.dstack([la[..., :1]] * 3 + [la[..., 1:]]))
    np.testing.assert_array_equal(decode_image(encode(Image.fromarray(la, "LA")), "la.png"), gray)


def test_banded_palette_and_colour_key_transparency(small_bands):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 4, (23, 37, 3), dtype=np.uint8) * 80
    key = tuple(int(v) for v in rgb[0, 0])
    decoded = decode_image(encode(Image.fromarray(rgb), transparency=key), "k.png")
    expected = np.where((rgb == key).all(axis=-1, keepdims=True), 255, rgb)
    np.testing.assert_array_equal(decoded, expected)
    palette = Image.fromarray(rgb).quantize(8)
    decoded = decode_image(encode(palette, transparency=0), "p.png")
    colours = np.asarray(palette.convert("RGB"))
    np.testing.assert_array_equal(decoded, np.where(np.asarray(palette)[..., None] == 0, 255, colours))


@pytest.mark.parametrize(
    "mode, values",
    [
        ("F", [[0.0, 0.5, np.nan], [np.inf, -1.0, 0.25]]),
        ("F", [[0.0, 200.0, np.nan], [np.inf, 3.0, 255.0]]),
        ("I", [[0, 100, 255], [7, 8, 9]]),
        ("I", [[0, 1000, 65535], [7, 8, 70000]]),
    ],
)
def test_banded_high_depth_scaling_uses_the_whole_image_range(small_bands, mode, values):
    pixels = np.repeat(np.array(values, np.float32 if mode == "F" else np.int32), 40, axis=0)  # (80, 3): 4 bands
    pixels[:40] = 0  # the range that decides the scale is only in the later bands
    decoded = decode_image(encode(Image.fromarray(pixels, mode), "TIFF"), f"deep-{mode}.tif")
    np.testing.assert_array_equal(decoded[..., 0], scale_to_uint8(pixels, mode))


def test_sixteen_bit_in_bands(small_bands):
    values = np.arange(0, 65536, 97, dtype=np.uint16)[:660].reshape(33, 20)
    np.testing.assert_array_equal(
        decode_image(encode(Image.fromarray(values)), "d.png")[..., 1], scale_to_uint8(values, "I;16")
    )


@pytest.mark.parametrize("policy", POLICIES)
def test_fitting_the_pillow_image_gives_the_pixels_of_a_numpy_resize(policy):
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (70, 110, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_image(Image.fromarray(rgb), 32, policy), resize(rgb, 32, policy))
    gray = rgb[..., 0]
    np.testing.assert_array_equal(
        resize_image(Image.fromarray(gray), 32, policy), resize(np.repeat(gray[..., None], 3, axis=2), 32, policy)
    )
    for kind, data in (
        ("rgba", encode(Image.fromarray(np.dstack([rgb, gray]), "RGBA"))),
        ("gray", encode(Image.fromarray(gray))),
        ("jpeg", encode(Image.fromarray(rgb), "JPEG")),
    ):
        fitted = decode_image_part(Part(f"x.{kind}", data), "image", DecodeSettings(32, policy))
        np.testing.assert_array_equal(fitted.frames[0].pixels, resize(decode_image(data, kind), 32, policy))
        assert fitted.info == {"width": 110, "height": 70}


def test_load_image_keeps_gray_as_one_channel():
    gray, _ = load_image(encode(Image.new("L", (6, 4), 9)), "g.png")
    deep, _ = load_image(encode(Image.fromarray(np.full((4, 6), 40000, np.uint16))), "d.png")
    rgba, size = load_image(encode(Image.new("RGBA", (6, 4), (1, 2, 3, 0))), "a.png")
    assert (gray.mode, deep.mode, rgba.mode, size) == ("L", "L", "RGB", (6, 4))


def test_running_out_of_memory_fails_the_item_with_its_own_reason(monkeypatch):
    def no_memory(image):
        raise MemoryError

    monkeypatch.setattr(image_module, "to_display", no_memory)
    err = reason_of(lambda: decode_image(encode(Image.new("RGB", (30, 20))), "m.png"))
    assert err.reason is Reason.OUT_OF_MEMORY and "m.png: no memory to decode 30x20 pixels" in err.detail
    assert "decode_workers or max_pixels" in err.detail
