"""Bytes -> RGB uint8 pixels, for every still-image mode a user's files hold.

EXIF orientation is applied; alpha is composited onto white; 16-bit and float images are scaled,
not clipped; palette, CMYK and grayscale become RGB. Failures raise `ItemError` with a reason.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lvm_data.outcomes import ItemError, Reason

DEFAULT_MAX_PIXELS = 178_956_970  # twice Pillow's warning limit: larger images are decompression bombs
EXIF_ORIENTATION = 0x0112


def decode_image(data: bytes, name: str = "", max_pixels: int = DEFAULT_MAX_PIXELS,
                 draft_to: int | None = None) -> np.ndarray:
    """Decode one image file's bytes to (H, W, 3) uint8 RGB. GIFs and multi-page TIFFs give frame 0.

    `draft_to`: a JPEG at least 4x larger than `draft_to` on both sides is decoded at 1/2, 1/4 or 1/8 scale
    (Pillow's draft mode, DCT scaling), keeping both sides at least 2x `draft_to`: several times faster,
    and the pixels differ a little from a full decode resized alike. Other formats are decoded whole.
    """
    return decode_image_sized(data, name, max_pixels, draft_to)[0]


def decode_image_sized(data: bytes, name: str = "", max_pixels: int = DEFAULT_MAX_PIXELS,
                       draft_to: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """`decode_image` and the image's full (width, height) after EXIF orientation, whatever scale it was
    decoded at."""
    if not data:
        raise ItemError(Reason.EMPTY_FILE, f"{name}: file is empty")
    image = open_image(data, name, max_pixels)
    try:
        full = _oriented_size(image) if draft_to and image.format == "JPEG" else None
        if full is not None:
            image.draft(image.mode, (2 * draft_to, 2 * draft_to))
        image.load()
        image = ImageOps.exif_transpose(image)
        pixels = to_rgb(image)
        return pixels, full or (pixels.shape[1], pixels.shape[0])
    except ItemError:
        raise
    except OSError as err:
        if "truncated" in str(err) or "broken data stream" in str(err):
            raise ItemError(Reason.TRUNCATED, f"{name}: {err}") from err
        raise ItemError(Reason.DECODE_ERROR, f"{name}: {err}") from err
    except (ValueError, SyntaxError, EOFError, TypeError, MemoryError) as err:
        raise ItemError(Reason.DECODE_ERROR, f"{name}: {type(err).__name__}: {err}") from err


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
    """(H, W, 3) uint8 RGB from any Pillow mode.

    High-depth grayscale is scaled by its nominal range (scale_to_uint8). Alpha, a palette with transparent
    entries and a tRNS colour key (L, RGB) are composited onto white. Palette, 1-bit, grayscale, CMYK
    (Pillow's (255 - c)(255 - k) / 255), YCbCr, LAB and HSV go through Pillow's conversion to RGB.
    """
    if image.mode in HIGH_DEPTH_MODES:
        gray = scale_to_uint8(np.asarray(image), image.mode)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        return composite_on_white(image.convert("RGBA"))
    if image.mode == "RGB":
        return np.asarray(image, dtype=np.uint8)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def scale_to_uint8(pixels: np.ndarray, mode: str) -> np.ndarray:
    """16-bit, 32-bit int and float grayscale to 0..255 by their nominal range, not by clipping."""
    values = pixels.astype(np.float64)
    if mode == "F":
        finite = values[np.isfinite(values)]
        top = 1.0 if finite.size == 0 or finite.max() <= 1.0 else 255.0
        values = np.nan_to_num(values, nan=0.0, posinf=top, neginf=0.0) / top
    else:
        top = 255.0 if mode == "I" and values.max(initial=0) <= 255 else 65535.0
        values = values / top
    return np.floor(np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def composite_on_white(rgba: Image.Image) -> np.ndarray:
    pixels = np.asarray(rgba, dtype=np.float32)
    alpha = pixels[..., 3:4] / 255.0
    rgb = pixels[..., :3] * alpha + 255.0 * (1.0 - alpha)
    return np.floor(rgb + 0.5).astype(np.uint8)
