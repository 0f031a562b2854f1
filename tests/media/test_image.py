import io

import numpy as np
import pytest
from PIL import Image

from lvm_data.media.image import decode_image, scale_to_uint8
from lvm_data.media.resize import resize
from lvm_data.outcomes import ItemError, Reason


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def asymmetric() -> np.ndarray:
    """A 6 x 4 (W x H) RGB image with a distinct value at every pixel."""
    return np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3) * 3


# EXIF orientation -> what a viewer shows, as numpy operations on the stored pixels
ORIENTATIONS = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation):
    pixels = asymmetric()
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.fromarray(pixels), "PNG", exif=exif.tobytes())
    np.testing.assert_array_equal(decode_image(data, "x.png"), ORIENTATIONS[orientation](pixels))


def test_grayscale_and_one_bit_become_equal_channels():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    rgb = decode_image(encode(Image.fromarray(gray), "PNG"), "g.png")
    assert rgb.shape == (3, 4, 3) and all(np.array_equal(rgb[..., c], gray) for c in range(3))
    bits = Image.fromarray(gray > 100).convert("1")
    np.testing.assert_array_equal(decode_image(encode(bits, "PNG"), "b.png")[..., 0], np.where(gray > 100, 255, 0))


def test_alpha_is_composited_on_white():
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, :, :3] = [200, 0, 40]
    rgba[0, :, 3] = [255, 0, 128]
    rgb = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"), "a.png")
    alpha = np.array([255, 0, 128])[:, None] / 255
    expected = np.floor(np.array([200, 0, 40]) * alpha + 255 * (1 - alpha) + 0.5)
    np.testing.assert_array_equal(rgb[0], expected)
    gray_alpha = Image.fromarray(np.stack([np.full((2, 2), 10, np.uint8), np.zeros((2, 2), np.uint8)], -1), "LA")
    np.testing.assert_array_equal(decode_image(encode(gray_alpha, "PNG"), "la.png"), np.full((2, 2, 3), 255))


def test_palette_images_use_their_colours_and_transparency():
    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((1, 0), 1)
    np.testing.assert_array_equal(decode_image(encode(palette, "PNG"), "p.png")[0], [[255, 0, 0], [0, 0, 255]])
    transparent = decode_image(encode(palette, "PNG", transparency=1), "t.png")  # index 1 fully transparent
    np.testing.assert_array_equal(transparent[0], [[255, 0, 0], [255, 255, 255]])
    gif = decode_image(encode(palette, "GIF", transparency=0), "t.gif")
    np.testing.assert_array_equal(gif[0], [[255, 255, 255], [0, 0, 255]])


def test_colour_key_transparency_of_rgb_png():
    pixels = np.array([[[10, 20, 30], [1, 2, 3]]], np.uint8)
    rgb = decode_image(encode(Image.fromarray(pixels), "PNG", transparency=(1, 2, 3)), "k.png")
    np.testing.assert_array_equal(rgb[0], [[10, 20, 30], [255, 255, 255]])


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_grayscale_is_scaled_not_clipped(fmt):
    values = np.array([[0, 257, 32768, 65535]], np.uint16)
    big_endian = Image.frombytes("I;16B", (4, 1), values.astype(">u2").tobytes())
    image = Image.fromarray(values) if fmt == "PNG" else big_endian
    rgb = decode_image(encode(image, fmt), f"deep.{fmt.lower()}")
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 1, 128, 255])


def test_float_and_32_bit_grayscale():
    assert scale_to_uint8(np.array([[0.0, 0.5, 1.0, np.nan]]), "F").tolist() == [[0, 128, 255, 0]]
    assert scale_to_uint8(np.array([[0.0, 127.5, 255.0]]), "F").tolist() == [[0, 128, 255]]
    assert scale_to_uint8(np.array([[0, 255]]), "I").tolist() == [[0, 255]]
    assert scale_to_uint8(np.array([[0, 65535, 70000]]), "I").tolist() == [[0, 255, 255]]


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk_becomes_rgb(fmt):
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # no cyan, full magenta and yellow: red
    rgb = decode_image(encode(cmyk, fmt, **({"quality": 100} if fmt == "JPEG" else {})), f"c.{fmt.lower()}")
    assert np.abs(rgb.astype(int) - [255, 0, 0]).max() <= 2
    half = decode_image(encode(Image.new("CMYK", (1, 1), (128, 0, 0, 128)), "TIFF"), "h.tif")
    np.testing.assert_array_equal(half[0, 0], [63, 127, 127])  # (255 - c)(255 - k) / 255


def test_multi_frame_gif_gives_the_first_frame():
    frames = [Image.new("RGB", (2, 2), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    np.testing.assert_array_equal(decode_image(buffer.getvalue(), "anim.gif")[0, 0], [255, 0, 0])


@pytest.mark.parametrize("data, reason", [(b"", Reason.EMPTY_FILE), (b"definitely not an image", Reason.NOT_MEDIA)])
def test_unusable_bytes_have_reasons(data, reason):
    with pytest.raises(ItemError) as caught:
        decode_image(data, "bad.bin")
    assert caught.value.reason is reason and "bad.bin" in caught.value.detail


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files(fmt):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), fmt)
    with pytest.raises(ItemError) as caught:
        decode_image(data[: len(data) // 2], f"cut.{fmt.lower()}")
    assert caught.value.reason is Reason.TRUNCATED


def test_decompression_bombs_are_refused_from_the_header():
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(ItemError) as caught:
        decode_image(data, "big.png", max_pixels=5000)
    assert caught.value.reason is Reason.TOO_LARGE and "100x100" in caught.value.detail


def jpeg_bytes(width: int, height: int, orientation: int | None = None) -> bytes:
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def test_draft_mode_decodes_large_jpegs_at_a_reduced_scale_and_reports_the_full_size():
    from lvm_data.items import Part
    from lvm_data.media.contract import DecodeSettings
    from lvm_data.media.decode import decode_image_part

    big = jpeg_bytes(2100, 1100)
    full, drafted = decode_image(big), decode_image(big, draft_to=256)
    assert full.shape == (1100, 2100, 3) and drafted.shape == (550, 1050, 3)  # 1/2: both sides stay >= 512
    assert decode_image(big, draft_to=128).shape == (275, 525, 3)  # 1/4
    assert decode_image(jpeg_bytes(900, 900), draft_to=256).shape == (900, 900, 3)  # not 4x larger: whole
    small = np.asarray(Image.fromarray(full).resize((256, 256), Image.BICUBIC), dtype=int)
    reduced = np.asarray(Image.fromarray(drafted).resize((256, 256), Image.BICUBIC), dtype=int)
    assert np.abs(small - reduced).mean() < 2.0  # the same picture, pixels a little different
    settings = DecodeSettings(256, jpeg_draft=True)
    big_rotated = jpeg_bytes(2100, 1100, orientation=6)
    rotated = decode_image_part(Part("big.jpg", big_rotated), "image", settings)
    assert rotated.info == {"width": 1100, "height": 2100}  # the full size, as the filters see it, rotated
    drafted_rotated = decode_image(big_rotated, draft_to=256)
    assert drafted_rotated.shape == (1050, 550, 3)  # fitted from the 1/2-scale decode, rotated
    np.testing.assert_array_equal(rotated.frames[0].pixels, resize(drafted_rotated, 256))
    png = io.BytesIO()
    Image.fromarray(full).save(png, "PNG")
    assert decode_image(png.getvalue(), draft_to=256).shape == full.shape  # only JPEGs have a draft mode
