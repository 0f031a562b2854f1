import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from lvm_data.items import ERROR_META
from lvm_data.media.contract import DecodeSettings
from lvm_data.media.decode import decode_item
from lvm_data.media.resize import resize
from lvm_data.sources.webdataset import WebDataset, split_member
from lvm_data.testing import write_tar


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def source(paths):
    return WebDataset("web", {"format": "webdataset", "paths": paths, "shard_size": 100})


def test_split_member_follows_the_webdataset_convention():
    assert split_member("000012.jpg") == ("000012", "jpg")
    assert split_member("dir/000012.seg.PNG") == ("dir/000012", "seg.png")


def test_img2dataset_layout(tmp_path):
    tar = write_tar(
        tmp_path / "00000.tar",
        [
            ("000.jpg", b"JPEG0"),
            ("000.json", json.dumps({"url": "u0", "label": 3}).encode()),
            ("000.txt", b"a cat"),
            ("001.png", b"PNG1"),
            ("001.txt", b"a dog"),
            ("002.json", b"{}"),
            ("002.txt", b"failed download"),
        ],
    )
    src = source(str(tmp_path))
    (unit,) = src.plan()
    assert unit.id == "00000" and unit.n_items is None and unit.spec[1] == tar.stat().st_size
    refs = list(src.read(unit))
    assert [r.key for r in refs] == ["00000.tar#000", "00000.tar#001", "00000.tar#002"]  # relative to the folder
    first = refs[0]
    assert first.parts["image"].data == b"JPEG0" and first.parts["image"].uri == f"{tar}#000.jpg"
    assert first.meta == {"caption": "a cat", "json": {"url": "u0", "label": 3}}
    assert refs[1].parts["image"].data == b"PNG1"
    assert refs[2].parts == {} and refs[2].meta[ERROR_META]["reason"] == "not_media"


def test_repeated_key_and_truncated_tar_become_failed_refs(tmp_path):
    tar = write_tar(
        tmp_path / "a.tar",
        [("000.jpg", b"x" * 3000), ("001.jpg", b"y"), ("000.txt", b"again"), ("002.jpg", b"z" * 3000)],
    )
    refs = list(source(str(tar)).read(source(str(tar)).plan()[0]))
    assert [r.meta.get(ERROR_META, {}).get("reason") for r in refs] == [None, None, "read_error", None]
    assert len({r.key for r in refs}) == len(refs)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(tar.read_bytes()[:3000])
    refs = list(source(str(cut)).read(source(str(cut)).plan()[0]))
    assert refs[-1].key == "cut.tar#<unreadable>" and refs[-1].meta[ERROR_META]["reason"] in ("truncated", "read_error")
    assert refs[-1].uri == str(cut)


def test_not_a_tar_and_an_empty_tar(tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"definitely not a tar archive" * 100)
    empty = write_tar(tmp_path / "empty.tar", [])
    src = source([str(bad), str(empty)])
    bad_unit, empty_unit = src.plan()
    (ref,) = list(src.read(bad_unit))
    assert ref.meta[ERROR_META]["reason"] == "read_error" and str(bad) in ref.meta[ERROR_META]["detail"]
    assert list(src.read(empty_unit)) == []


def png_bytes(value: int) -> bytes:
    pixels = np.zeros((16, 24, 3), np.uint8)
    pixels[..., 0] = np.arange(24, dtype=np.uint8) * 10
    pixels[..., 2] = value
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_linked_tar(path, mode: str = "w"):
    """A tar with regular members, hard and symbolic links (good and bad), a FIFO and a non-UTF-8 name."""
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape") as tar:

        def member(name, data=None, kind=tarfile.REGTYPE, target=""):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            info.size = len(data) if data is not None else 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        member("000.png", png_bytes(0))
        member("000.txt", b"the first")
        member("001.png", kind=tarfile.LNKTYPE, target="000.png")  # a hard link: the bytes of 000.png
        member("002.png", kind=tarfile.SYMTYPE, target="000.png")
        member("002.txt", kind=tarfile.SYMTYPE, target="000.txt")
        member("d/003.png", kind=tarfile.SYMTYPE, target="../001.png")  # relative to d/, through the hard link
        member("004.png", kind=tarfile.SYMTYPE, target="/etc/passwd")
        member("005.png", kind=tarfile.SYMTYPE, target="../../x.png")
        member("006.png", kind=tarfile.SYMTYPE, target="missing.png")
        member("007.png", kind=tarfile.SYMTYPE, target="008.png")  # a loop
        member("008.png", kind=tarfile.SYMTYPE, target="007.png")
        member("009.png", kind=tarfile.SYMTYPE, target="010.png")  # a later member: not resolved
        member("010.png", png_bytes(10))
        member("011.png", kind=tarfile.FIFOTYPE)
        member("d", kind=tarfile.DIRTYPE)
        member("012.png", kind=tarfile.SYMTYPE, target="d")
        member("bad\udcff.png", png_bytes(99))  # the name's bytes are b"bad\xff.png"
        member("013.png", png_bytes(13))
        member("013.cls", kind=tarfile.SYMTYPE, target="nothing")  # not a member the sample uses
    return path


EXPECTED = {
    "000": None,
    "001": None,
    "002": None,
    "d/003": None,
    "004": "link_outside_root",
    "005": "link_outside_root",
    "006": "broken_link",
    "007": "broken_link",
    "008": "broken_link",
    "009": "broken_link",
    "010": None,
    "011": "read_error",
    "012": "broken_link",
    "bad%FF": None,
    "013": None,
}
PIXELS = {"000": 0, "001": 0, "002": 0, "d/003": 0, "010": 10, "bad%FF": 99, "013": 13}


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_link_members_resolve_inside_the_tar_or_fail_their_sample(tmp_path, mode):
    tar = write_linked_tar(tmp_path / "links.tar", mode)
    src = source(str(tar))
    refs = list(src.read(src.plan()[0]))
    got = {r.key.split("#", 1)[1]: r.meta.get(ERROR_META, {}).get("reason") for r in refs}
    assert got == EXPECTED  # one item per sample, each key once
    settings = DecodeSettings(image_size=16, resize="squash")
    for ref in refs:
        key = ref.key.split("#", 1)[1]
        if key in PIXELS:
            want = resize(np.asarray(Image.open(io.BytesIO(png_bytes(PIXELS[key])))), 16, "squash")
            assert np.array_equal(decode_item(ref, settings).frames[0].pixels, want), key
    by_key = {r.key.split("#", 1)[1]: r for r in refs}
    assert by_key["002"].meta["caption"] == "the first"  # a linked .txt is the caption too
    assert all(r.key.encode("utf-8") and r.uri.encode("utf-8") for r in refs)  # no surrogates
    details = {k: r.meta[ERROR_META]["detail"] for k, r in by_key.items() if ERROR_META in r.meta}
    assert "outside the tar" in details["004"] and "a loop of links" in details["008"]
    assert "no member before it" in details["009"] and "not a regular member" in details["012"]


def test_a_tar_linked_from_outside_its_folder_is_one_failed_item(tmp_path):
    (tmp_path / "in").mkdir()
    write_tar(tmp_path / "in" / "a.tar", [("000.jpg", b"J")])
    write_tar(tmp_path / "b.tar", [("000.jpg", b"J")])
    (tmp_path / "in" / "b.tar").symlink_to(tmp_path / "b.tar")
    src = source(str(tmp_path / "in"))
    a, b = src.plan()
    assert b.n_items == 1 and [r.key for r in src.read(a)] == ["a.tar#000"]
    (ref,) = src.read(b)
    assert ref.key == "b.tar" and ref.meta[ERROR_META]["reason"] == "link_outside_root"
    assert ref.uri == f"{tmp_path}/in/b.tar"
    allowed = WebDataset(
        "web", {"format": "webdataset", "paths": str(tmp_path / "in"), "shard_size": 100, "follow_links": "outside"}
    )
    assert [r.key for u in allowed.plan() for r in allowed.read(u)] == ["a.tar#000", "b.tar#000"]


def pax_tar(path, headers: list[dict]) -> None:
    """A PAX tar of 000.jpg, 001.jpg, ... with the given extended headers, one dict per member."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for i, pax in enumerate(headers):
            info = tarfile.TarInfo(f"{i:03d}.jpg")
            info.size, info.pax_headers = 1, pax
            tar.addfile(info, io.BytesIO(b"J"))


def keys_and_reasons(path) -> list[tuple[str, str | None]]:
    src = source(str(path))
    return [(r.key.split("#", 1)[1], r.meta.get(ERROR_META, {}).get("reason")) for r in src.read(src.plan()[0])]


def test_a_pax_header_tarfile_cannot_parse_ends_the_tar_with_a_row(tmp_path):
    """Found by benchmarks/fuzz.py: Python 3.11's tarfile raises ValueError for a PAX number that is none."""
    pax_tar(tmp_path / "sparse.tar", [{}, {"GNU.sparse.map": "", "GNU.sparse.size": "1"}, {}])
    assert keys_and_reasons(tmp_path / "sparse.tar") == [("000", None), ("<unreadable>", "read_error")]


def test_a_bad_header_after_the_first_is_a_row_not_a_silent_end(tmp_path):
    """Found by benchmarks/fuzz.py: tarfile ends its iteration quietly at a later header with a bad checksum."""
    tar = write_tar(tmp_path / "a.tar", [("000.jpg", b"J" * 600), ("001.jpg", b"K"), ("002.jpg", b"L")])
    data = bytearray(tar.read_bytes())
    data[512 + 1024] ^= 1  # the name of 001.jpg's header: its checksum no longer matches
    tar.write_bytes(bytes(data))
    assert keys_and_reasons(tar) == [("000", None), ("<unreadable>", "read_error")]
    pax_tar(tmp_path / "size.tar", [{}, {"size": "x"}, {}])  # tarfile skipped 002.jpg without a word
    assert keys_and_reasons(tmp_path / "size.tar")[-1] == ("<unreadable>", "read_error")
    assert keys_and_reasons(write_tar(tmp_path / "fine.tar", [("000.jpg", b"J")])) == [("000", None)]


def test_a_key_repeated_twice_gives_rows_with_unique_keys(tmp_path):
    """Found by benchmarks/fuzz.py: the second repeat of a key had the first repeat's key."""
    tar = write_tar(
        tmp_path / "a.tar",
        [
            ("000.jpg", b"J"),
            ("001.jpg", b"K"),
            ("000.txt", b"a"),
            ("001.txt", b"b"),
            ("000.json", b"{}"),
            ("000@2.jpg", b"M"),
        ],
    )
    got = keys_and_reasons(tar)
    assert [reason for _, reason in got] == [None, None, "read_error", "read_error", "read_error", "read_error"]
    assert len({key for key, _ in got}) == len(got)


@pytest.mark.timeout(60)
def test_a_sparse_member_claiming_a_huge_size_is_not_drained(tmp_path):
    """Found by benchmarks/fuzz.py: the holes of a sparse member read as zeros, 100 TB of them took hours."""
    pax_tar(tmp_path / "a.tar", [{}, {"GNU.sparse.size": str(10**14)}, {}])
    assert keys_and_reasons(tmp_path / "a.tar") == [("000", None), ("001", "file_too_large"), ("002", None)]


def test_a_gzip_header_cut_short_is_a_row(tmp_path):
    """Found by benchmarks/fuzz.py: tarfile raised TypeError (ord() of nothing) for a .tar.gz of its first 3 bytes."""
    (tmp_path / "a.tar").write_bytes(b"\x1f\x8b\x08")
    assert [reason for _, reason in keys_and_reasons(tmp_path / "a.tar")] == ["read_error"]


@pytest.mark.timeout(60)
def test_a_header_that_puts_the_next_one_past_the_end_is_a_truncated_row_not_a_hang(tmp_path):
    """Found by benchmarks/fuzz.py: tarfile's stream seek to a next header petabytes away read 10 KiB at a time
    past the end of the data, for hours."""
    pax_tar(tmp_path / "a.tar", [{}, {"size": "0", "GNU.sparse.size": str(10**15)}, {}])
    assert keys_and_reasons(tmp_path / "a.tar") == [
        ("000", None),
        ("001", "file_too_large"),
        ("<unreadable>", "truncated"),
    ]


@pytest.mark.parametrize("member", [b"1" * 5000, b"[" * 100_000])
def test_a_json_member_python_cannot_parse_is_a_json_error_not_the_end_of_the_tar(tmp_path, member):
    """json.loads raises ValueError (not JSONDecodeError) for a number of over 4300 digits, RecursionError for
    deep nesting: the first ended the tar, the second escaped read()."""
    tar = write_tar(tmp_path / "a.tar", [("000.jpg", b"J"), ("000.json", member), ("001.jpg", b"K")])
    src = source(str(tar))
    refs = list(src.read(src.plan()[0]))
    assert [(r.key.split("#", 1)[1], r.meta.get("json_error")) for r in refs] == [
        ("000", "unparseable .json member"),
        ("001", None),
    ]


def test_gzip_shards_are_units_and_a_named_file_is_read_whatever_its_name(tmp_path):
    for name in ("a.tar", "b.tar.gz", "c.gz", "d.tgz"):
        (tmp_path / name).write_bytes(b"x")
    assert [u.id for u in WebDataset("w", {"paths": str(tmp_path), "shard_size": 10}).plan()] == ["a", "b", "d"]
    named = WebDataset("w", {"paths": str(tmp_path / "c.gz"), "shard_size": 10}).plan()
    assert len(named) == 1  # named in paths: read (and failed with a reason if it is no tar), never skipped
