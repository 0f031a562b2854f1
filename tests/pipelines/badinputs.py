"""A bad-input corpus of many kinds, generated on the spot: each kind's files, and the ledger row it must end as.

`build(root)` writes four input folders (still images, webdataset tars, videos, image + depth pairs) and returns
the kinds. A kind is found in the ledger by a unique piece of its row's URI (`marker`), so the check does not
depend on how keys are spelled. For ok kinds of still images and tar members, `reference()` gives the expected
frame computed without lvm-data (Pillow: EXIF orientation, alpha onto white, RGB, bicubic squash).
`expected = None` means the kind must add no row of its own (a link to a file already in the corpus).
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from lvm_data.media.samples import photos, videos
from lvm_data.testing import png_header_only

SIZE = 32  # the tiny tokenizer's input
MAX_ITEM_BYTES = 2_000_000
MAX_PIXELS = 4_000_000


@dataclass
class Kind:
    name: str
    source: str
    marker: str  # a unique piece of the row's uri
    expected: tuple[str, str] | None  # (status, reason)
    data: bytes | None = None  # ok still kinds and tar members: the image bytes (the reference is made from them)
    at_end: bool = False  # the marker ends the row's uri (a whole tar's row, beside its members' rows)

    def reference(self) -> np.ndarray | None:
        return None if self.data is None else reference_frame(self.data)


def reference_frame(data: bytes) -> np.ndarray:
    """The frame a still image should give, by Pillow alone."""
    image = Image.open(io.BytesIO(data))
    image.seek(0)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I"):
        image = Image.fromarray((np.asarray(image, np.float64) / 65535 * 255).round().astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info or image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("RGB").resize((SIZE, SIZE), Image.BICUBIC))


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _photo(i: int, size: tuple[int, int] = (96, 64)) -> Image.Image:
    return Image.open(photos("train")[i % len(photos("train"))]).convert("RGB").resize(size)


def still_kinds(folder: Path) -> list[Kind]:
    folder.mkdir(parents=True)
    kinds: list[Kind] = []

    def add(name: str, data: bytes, expected: tuple[str, str], ok_reference: bool = True) -> None:
        (folder / name).write_bytes(data)
        ok_data = data if expected == ("ok", "ok") and ok_reference else None
        kinds.append(Kind(name.rsplit(".", 1)[0], "stills", name, expected, ok_data))

    ok = ("ok", "ok")
    rgba = _photo(1).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees clockwise
    animated = io.BytesIO()
    _photo(2).save(animated, "GIF", save_all=True, append_images=[_photo(3)], duration=100)
    add("jpeg_rgb.jpg", encoded(_photo(0), "JPEG", quality=90), ok)
    add("png_rgb.png", encoded(_photo(4), "PNG"), ok)
    add("png_rgba_alpha.png", encoded(rgba, "PNG"), ok)
    add("png_gray.png", encoded(_photo(5).convert("L"), "PNG"), ok)
    add("png_16bit.png", encoded(Image.fromarray(np.asarray(_photo(6).convert("L"), np.uint16) * 257), "PNG"), ok)
    add("png_palette.png", encoded(_photo(7).convert("P", palette=Image.ADAPTIVE), "PNG"), ok)
    add("gif_animated_first_frame.gif", animated.getvalue(), ok)
    add("webp.webp", encoded(_photo(8), "WEBP", quality=90), ok)
    add("bmp.bmp", encoded(_photo(9), "BMP"), ok)
    add("tiff.tif", encoded(_photo(10), "TIFF"), ok)
    add("jpeg_cmyk.jpg", encoded(_photo(11).convert("CMYK"), "JPEG", quality=90), ok)
    add("jpeg_exif_rotated.jpg", encoded(_photo(12), "JPEG", quality=90, exif=exif), ok)
    add("png_named_jpg.jpg", encoded(_photo(13), "PNG"), ok)
    png = encoded(_photo(14), "PNG")
    add("empty_file.png", b"", ("failed", "empty_file"))
    add("text_as_jpeg.jpg", b"these are notes, not an image\n", ("failed", "not_media"))
    noise = np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes()
    add("random_bytes.png", noise, ("failed", "not_media"))
    add("truncated_png.png", png[: len(png) // 2], ("failed", "truncated"))
    corrupt = bytearray(png)
    corrupt[len(png) // 3 : len(png) // 3 + 64] = bytes(64)
    add("corrupt_png.png", bytes(corrupt), ("failed", "decode_error"))
    add("bomb_header.png", png_header_only(100_000, 100_000), ("failed", "too_large"))
    flat = Image.linear_gradient("L").resize((2100, 2000)).convert("RGB")  # compresses well: under max_item_bytes
    add("over_max_pixels.png", encoded(flat, "PNG", compress_level=9), ("failed", "too_large"))
    with open(folder / "over_max_item_bytes.png", "wb") as f:  # sparse: big on paper, nothing on disk
        f.write(png)
        f.truncate(MAX_ITEM_BYTES + 1)
    kinds.append(Kind("over_max_item_bytes", "stills", "over_max_item_bytes.png", ("failed", "file_too_large")))
    name = os.fsencode(folder) + b"/non_utf8_\xff.png"
    with open(name, "wb") as f:
        f.write(encoded(_photo(16), "PNG"))
    kinds.append(Kind("non_utf8_name", "stills", "non_utf8_%FF.png", ok, encoded(_photo(16), "PNG")))
    os.symlink(folder / "png_rgb.png", folder / "link_inside.png")
    kinds.append(Kind("link_to_a_file_inside", "stills", "link_inside.png", None))
    os.symlink(".", folder / "loop")
    kinds.append(Kind("link_loop_to_its_folder", "stills", "/loop/", None))
    outside = folder.parent / "outside.png"
    outside.write_bytes(encoded(_photo(17), "PNG"))
    os.symlink(outside, folder / "link_outside.png")
    kinds.append(Kind("link_outside_the_root", "stills", "link_outside.png", ("failed", "link_outside_root")))
    os.symlink(folder / "gone.png", folder / "broken_link.png")
    kinds.append(Kind("broken_link", "stills", "broken_link.png", ("failed", "broken_link")))
    os.mkfifo(folder / "fifo.png")
    kinds.append(Kind("fifo", "stills", "fifo.png", ("failed", "read_error")))
    return kinds


def _tar(path: Path, members: list[tuple[str, bytes | tarfile.TarInfo]], compress: bool = False) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(
        fileobj=raw, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape"
    ) as tar:
        for name, data in members:
            if isinstance(data, tarfile.TarInfo):
                tar.addfile(data)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = gzip.compress(raw.getvalue(), mtime=0) if compress else raw.getvalue()
    path.write_bytes(blob)
    return blob


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def tar_kinds(folder: Path) -> list[Kind]:
    folder.mkdir(parents=True)
    ok = ("ok", "ok")
    jpg, png = encoded(_photo(20), "JPEG", quality=90), encoded(_photo(21), "PNG")
    link_png = encoded(_photo(22), "PNG")
    kinds = [
        Kind("tar_jpeg_member", "tars", "good.tar#m_jpeg", ok, jpg),
        Kind("tar_png_member", "tars", "good.tar#m_png", ok, png),
        Kind("tar_sample_without_image", "tars", "good.tar#m_caption_only", ("failed", "not_media")),
        Kind("tar_corrupt_member", "tars", "good.tar#m_corrupt", ("failed", "decode_error")),
        # a member name with '..' is only a name: members are read into memory, never extracted
        Kind("tar_path_traversal_member_name", "tars", "good.tar#../evil", ok, jpg),
        Kind("tar_non_utf8_member", "tars", "good.tar#m_bad%FE", ok, png),
        Kind("tar_hard_link_member", "tars", "links.tar#hard", ok, link_png),
        Kind("tar_symbolic_link_member", "tars", "links.tar#soft", ok, link_png),
        Kind("tar_link_to_a_missing_member", "tars", "links.tar#dangling", ("failed", "broken_link")),
        Kind("tar_link_outside_the_tar", "tars", "links.tar#escape", ("failed", "link_outside_root")),
        Kind("tar_member_over_max_item_bytes", "tars", "big.tar#huge", ("failed", "file_too_large")),
        Kind("tar_truncated_in_member_data", "tars", "cut_data.tar", ("failed", "truncated")),
        Kind("tar_member_before_a_cut_header", "tars", "cut_header.tar#c1", ok, jpg),
        Kind("tar_cut_inside_a_header", "tars", "cut_header.tar", ("failed", "truncated"), at_end=True),
        Kind("not_a_tar", "tars", "garbage.tar", ("failed", "read_error")),
        Kind("gzip_tar_member", "tars", "packed.tar.gz#m_jpeg", ok, jpg),
    ]
    corrupt = bytearray(png)
    corrupt[len(png) // 3 : len(png) // 3 + 64] = bytes(64)
    _tar(
        folder / "good.tar",
        [
            ("m_jpeg.jpg", jpg),
            ("m_png.png", png),
            ("m_caption_only.txt", b"a caption"),
            ("m_corrupt.png", bytes(corrupt)),
            ("../evil.jpg", jpg),
            (os.fsdecode(b"m_bad\xfe.png"), png),
        ],
    )
    _tar(
        folder / "links.tar",
        [
            ("base.png", link_png),
            ("hard.png", _link("hard.png", "base.png", tarfile.LNKTYPE)),
            ("soft.png", _link("soft.png", "base.png", tarfile.SYMTYPE)),
            ("dangling.png", _link("dangling.png", "nowhere.png", tarfile.SYMTYPE)),
            ("escape.png", _link("escape.png", "../../etc/passwd", tarfile.SYMTYPE)),
        ],
    )
    kinds.append(Kind("tar_link_target_itself", "tars", "links.tar#base", ok, link_png))
    _tar(folder / "big.tar", [("huge.png", png + bytes(MAX_ITEM_BYTES))])
    blob = _tar(folder / "whole.tmp", [("c1.jpg", jpg)])
    (folder / "whole.tmp").unlink()
    (folder / "cut_data.tar").write_bytes(blob[: 512 + len(jpg) // 2])  # inside the member's data
    blob = _tar(folder / "whole.tmp", [("c1.jpg", jpg), ("c2.jpg", jpg)])
    (folder / "whole.tmp").unlink()
    (folder / "cut_header.tar").write_bytes(blob[: 512 + -(-len(jpg) // 512) * 512 + 200])  # inside c2's header
    (folder / "garbage.tar").write_bytes(np.random.default_rng(1).integers(0, 256, 3000, np.uint8).tobytes())
    _tar(folder / "packed.tar.gz", [("m_jpeg.jpg", jpg)], compress=True)
    return kinds


def video_kinds(folder: Path) -> list[Kind]:
    folder.mkdir(parents=True)
    clip = next(v for v in videos() if v.name == "carphone_pristine.mp4").read_bytes()
    (folder / "video_ok.mp4").write_bytes(clip)
    (folder / "video_truncated.mp4").write_bytes(clip[: len(clip) // 3])
    (folder / "video_random_bytes.mp4").write_bytes(np.random.default_rng(2).integers(0, 256, 5000, np.uint8).tobytes())
    (folder / "video_empty.mp4").write_bytes(b"")
    (folder / "video_still_image.mp4").write_bytes(encoded(_photo(30), "PNG"))
    return [
        Kind("video_ok", "clips", "video_ok.mp4", ("ok", "ok")),
        # cut before its index (moov): the container cannot be opened at all
        Kind("video_truncated", "clips", "video_truncated.mp4", ("failed", "decode_error")),
        Kind("video_random_bytes", "clips", "video_random_bytes.mp4", ("failed", "not_media")),
        Kind("video_empty", "clips", "video_empty.mp4", ("failed", "empty_file")),
        Kind("video_that_is_a_still_image", "clips", "video_still_image.mp4", ("failed", "too_short")),
    ]


def pair_kinds(folder: Path) -> list[Kind]:
    images, depth = folder / "images", folder / "depth"
    images.mkdir(parents=True)
    depth.mkdir()
    for name, (w, h), (dw, dh) in (
        ("pair_ok", (96, 64), (96, 64)),
        ("depth_half_size", (96, 64), (48, 32)),
        ("depth_wrong_shape", (96, 64), (64, 96)),
    ):
        _photo(40).resize((w, h)).save(images / f"{name}.png")
        Image.fromarray(np.random.default_rng(3).integers(0, 255, (dh, dw), np.uint8)).save(depth / f"{name}.png")
    _photo(41).save(images / "image_without_depth.png")
    return [
        Kind("pair_ok", "pairs", "pair_ok.png", ("ok", "ok")),
        Kind("depth_at_half_size", "pairs", "depth_half_size.png", ("ok", "ok")),
        Kind("depth_of_the_wrong_shape", "pairs", "depth_wrong_shape.png", ("failed", "bad_annotation")),
        Kind("image_without_its_depth", "pairs", "image_without_depth.png", ("failed", "unpaired")),
    ]


def build(root: Path) -> tuple[list[Kind], list[dict]]:
    """Write the corpus under `root`; (kinds, the job's sources)."""
    shutil.rmtree(root, ignore_errors=True)
    kinds = (
        still_kinds(root / "stills")
        + tar_kinds(root / "tars")
        + video_kinds(root / "videos")
        + pair_kinds(root / "pairs")
    )
    sources = [
        {"name": "stills", "input": {"format": "images", "paths": [str(root / "stills")]}, "template": "single"},
        {"name": "tars", "input": {"format": "webdataset", "paths": [str(root / "tars")]}, "template": "single"},
        {
            "name": "clips",
            "input": {
                "format": "videos",
                "paths": [str(root / "videos")],
                "clip": {"frames": 4, "stride": 2, "clips": 1},
            },
            "template": "video",
        },
        {
            "name": "pairs",
            "input": {
                "format": "paired",
                "images": str(root / "pairs" / "images"),
                "annotations": {"depth": str(root / "pairs" / "depth")},
            },
            "template": {"name": "pairs", "pairs": 2, "min_pairs": 1},
        },
    ]
    return kinds, sources
