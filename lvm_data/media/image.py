"""Bytes -> RGB uint8 pixels, for every still-image mode a user's files hold, in memory bounded by the pixels.

EXIF orientation is applied; alpha is composited onto white; 16-bit and float images are scaled,
not clipped; palette, CMYK and grayscale become RGB. Failures raise `ItemError` with a reason.

Memory: the size is checked from the header before anything is decoded (`max_pixels`, reason `too_large`).
`load_image` then holds Pillow's decoded raster (at most 4 bytes a pixel: Pillow keeps RGB, RGBA, LA, CMYK, I
and F at 4, I;16 at 2, L, P and 1 at 1) and at most one converted copy of it (RGB at 4, or L at 1); alpha
compositing and high-depth scaling run in row bands of BAND_PIXELS pixels. So an item's peak is its file's
bytes + at most 8 bytes a pixel + a few bands (measured: 8.4 bytes a pixel for a 6000 x 6000 RGBA PNG and 8.2
for a 13000 x 13000 one, where the float32 composite of the whole image took 61). PNG has no reduced-size
decode in Pillow (JPEG has: `draft_to`), so its raster is decoded whole. A decoder that still cannot get memory
fails its item with `out_of_memory`.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lvm_data.outcomes import ItemError, Reason

DEFAULT_MAX_PIXELS = 178_956_970  # twice Pillow's warning limit: larger images are decompression bombs
EXIF_ORIENTATION = 0x0112
BAND_PIXELS = 1 << 20  # pixels per row band when compositing or scaling (1 Mpx: at most ~32 MB of temporaries)
WHITE = (255, 255, 255)


def decode_image(
    data: bytes, name: str = "", max_pixels: int = DEFAULT_MAX_PIXELS, draft_to: int | None = None
) -> np.ndarray:
    """Decode one image file's bytes to (H, W, 3) uint8 RGB. GIFs and multi-page TIFFs give frame 0.

    `draft_to`: a JPEG at least 4x larger than `draft_to` on both sides is decoded at 1/2, 1/4 or 1/8 scale
    (Pillow's draft mode, DCT scaling), keeping both sides at least 2x `draft_to`: several times faster,
    and the pixels differ a little from a full decode resized alike. Other formats are decoded whole.
    """
    return decode_image_sized(data, name, max_pixels, draft_to)[0]


def decode_image_sized(
    data: bytes, name: str = "", max_pixels: int = DEFAULT_MAX_PIXELS, draft_to: int | None = None
) -> tuple[np.ndarray, tuple[int, int]]:
    """`decode_image` and the image's full (width, height) after EXIF orientation, whatever scale it was
    decoded at."""
    image, full = load_image(data, name, max_pixels, draft_to)
    try:
        return rgb_array(image), full
    except MemoryError as err:
        raise _out_of_memory(name, image.size, err) from err


def load_image(
    data: bytes, name: str = "", max_pixels: int = DEFAULT_MAX_PIXELS, draft_to: int | None = None
) -> tuple[Image.Image, tuple[int, int]]:
    """`decode_image_sized` as a Pillow image in mode RGB, or L for gray (its RGB has three equal channels),
    without a numpy copy of it: `lvm_data.media.resize.resize_image` fits it to the tokenizer's input."""
    if not data:
        raise ItemError(Reason.EMPTY_FILE, f"{name}: file is empty")
    image = open_image(data, name, max_pixels)
    try:
        full = _oriented_size(image) if draft_to and image.format == "JPEG" else None
        if full is not None and draft_to:  # full is only set with draft_to
            image.draft(image.mode, (2 * draft_to, 2 * draft_to))
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # no copy when the orientation is 1 (the default makes one)
        image = to_display(image)
        return image, full or image.size
    except ItemError:
        raise
    except MemoryError as err:
        raise _out_of_memory(name, image.size, err) from err
    except OSError as err:
        if "truncated" in str(err) or "broken data stream" in str(err):
            raise ItemError(Reason.TRUNCATED, f"{name}: {err}") from err
        raise ItemError(Reason.DECODE_ERROR, f"{name}: {err}") from err
    except (ValueError, SyntaxError, EOFError, TypeError) as err:
        raise ItemError(Reason.DECODE_ERROR, f"{name}: {type(err).__name__}: {err}") from err


def _out_of_memory(name: str, size: tuple[int, int], err: MemoryError) -> ItemError:
    return ItemError(
        Reason.OUT_OF_MEMORY,
        f"{name}: no memory to decode {size[0]}x{size[1]} pixels "
        f"({err or 'MemoryError'}); lower decode_workers or max_pixels in the job file, or give the "
        "workers more memory",
    )


def _oriented_size(image: Image.Image) -> tuple[int, int]:
    width, height = image.size
    transposed = image.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8)  # rotated by 90 degrees
    return (height, width) if transposed else (width, height)


def open_image(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open lazily (header only) and refuse images whose dimensions exceed `max_pixels`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise ItemError(Reason.TOO_LARGE, f"{name}: {err}") from err
    except UnidentifiedImageError as err:
        raise ItemError(Reason.NOT_MEDIA, f"{name}: not an image format Pillow can read") from err
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ItemError(Reason.DECODE_ERROR, f"{name}: {err}") from err
    width, height = image.size
    if width * height > max_pixels:
        raise ItemError(Reason.TOO_LARGE, f"{name}: {width}x{height} pixels exceeds the limit of {max_pixels}")
    if width == 0 or height == 0:
        raise ItemError(Reason.DECODE_ERROR, f"{name}: image has zero size {width}x{height}")
    return image


HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")


def to_rgb(image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB from any Pillow mode (see `to_display`)."""
    return rgb_array(to_display(image))


def rgb_array(image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 from an RGB or L image."""
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)


def to_display(image: Image.Image) -> Image.Image:
    """An RGB or L (gray) image from any Pillow mode, holding at most one converted copy beside `image`.

    High-depth grayscale is scaled by its nominal range (scale_to_uint8). Alpha, a palette with transparent
    entries and a tRNS colour key (L, RGB) are composited onto white. Palette, 1-bit, CMYK (Pillow's
    (255 - c)(255 - k) / 255), YCbCr, LAB and HSV go through Pillow's conversion to RGB; RGB and L are kept.
    """
    if image.mode in HIGH_DEPTH_MODES:
        return scaled_gray(image)
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        return composite_on_white(image)
    if image.mode in ("RGB", "L"):
        return image
    return image.convert("RGB")


def row_bands(image: Image.Image) -> list[tuple[int, int, int, int]]:
    """Crop boxes of consecutive row bands of about BAND_PIXELS pixels covering the image."""
    width, height = image.size
    rows = max(1, BAND_PIXELS // max(1, width))
    return [(0, top, width, min(height, top + rows)) for top in range(0, height, rows)]


def composite_on_white(image: Image.Image) -> Image.Image:
    """The image's alpha (or its palette's or colour key's transparency) composited onto white, as RGB.

    uint8 throughout, one row band at a time: Pillow's masked paste gives round((c a + 255 (255 - a)) / 255),
    exactly the float formula's pixels, in the RGB result (4 bytes a pixel) plus one band.
    """
    out = Image.new("RGB", image.size, WHITE)
    for box in row_bands(image):
        band = image.crop(box).convert("RGBA")
        out.paste(band, box[:2], band)
    return out


def scaled_gray(image: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit int or float grayscale image as L by its nominal range (scale_to_uint8), in row bands."""
    boxes = row_bands(image)
    top = _nominal_top(image.mode, (np.asarray(image.crop(box)) for box in boxes))
    out = Image.new("L", image.size)
    for box in boxes:
        out.paste(Image.fromarray(_scaled(np.asarray(image.crop(box)), image.mode, top)), box[:2])
    return out


def scale_to_uint8(pixels: np.ndarray, mode: str) -> np.ndarray:
    """16-bit, 32-bit int and float grayscale to 0..255 by their nominal range, not by clipping."""
    return _scaled(pixels, mode, _nominal_top(mode, [pixels]))


def _nominal_top(mode: str, bands: Iterable[np.ndarray]) -> float:
    """The value that becomes 255: F: 1.0 when every finite value is <= 1, else 255; I: 255 when every value is
    <= 255, else 65535; 16-bit: 65535."""
    if mode == "F":
        highest = max((float(b[np.isfinite(b)].max()) for b in bands if np.isfinite(b).any()), default=None)
        return 1.0 if highest is None or highest <= 1.0 else 255.0
    if mode == "I":
        return 255.0 if max((float(b.max(initial=0)) for b in bands), default=0.0) <= 255 else 65535.0
    return 65535.0


def _scaled(pixels: np.ndarray, mode: str, top: float) -> np.ndarray:
    values = pixels.astype(np.float64)
    if mode == "F":
        values = np.nan_to_num(values, nan=0.0, posinf=top, neginf=0.0)
    return np.floor(np.clip(values / top, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
