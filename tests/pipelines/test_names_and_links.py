"""The job end to end over names that are not UTF-8, link loops, links out of the input and tar link members:
each input ends as exactly one ledger row, the job finishes, and the ok rows hold the codes of the files' own
pixels (issue 15: "Names that are not UTF-8", "Symlink loops", "Tar link members")."""

import io
import os
import tarfile

import numpy as np
import pytest
from resumes import ledger

from lvm_data.items import ItemRef, Part
from lvm_data.job.config import JobConfigError, parse_job_text
from lvm_data.media.contract import DecodeSettings
from lvm_data.media.decode import decode_item
from lvm_data.media.samples import package_file
from lvm_data.shards.reader import read_sentences
from lvm_data.testing import images_source, job_text, write_tiny_checkpoint
from lvm_data.tokenizer import load
from pipelines.tokenize import run_job

PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("tiny")))


def write(path: bytes | str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.close(fd)


def photo_folder(root, pics: list[bytes], outside) -> None:
    """root/: a.png, b"bad\\xff.png", sub/c.png; links to '.', '..' (twice), a.png, a file outside, nowhere."""
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    write(str(root / "a.png"), pics[0])
    write(os.fsencode(root) + b"/bad\xff.png", pics[1])
    write(str(root / "sub" / "c.png"), pics[2])
    write(str(outside / "o.png"), pics[0])
    for target, link in (
        (".", "self"),
        ("..", "up"),
        ("..", "sub/up"),
        ("a.png", "alias.png"),
        (str(outside / "o.png"), "out.png"),
        ("gone.png", "dangling.png"),
    ):
        os.symlink(target, root / link)
    os.mkfifo(root / "pipe.png")


def linked_tar(path, pics: list[bytes]) -> None:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape") as tar:

        def member(name, data=None, kind=tarfile.REGTYPE, target=""):
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, target, len(data) if data else 0
            tar.addfile(info, io.BytesIO(data) if data else None)

        member("000.png", pics[0])
        member("001.png", kind=tarfile.LNKTYPE, target="000.png")
        member("002.png", kind=tarfile.SYMTYPE, target="000.png")
        member("bad\udcfe.png", pics[1])  # the member name's bytes: b"bad\xfe.png"
        member("003.png", kind=tarfile.SYMTYPE, target="../outside.png")
        member("004.png", kind=tarfile.SYMTYPE, target="missing.png")
        member("005.png", pics[2])


def test_bad_names_and_links_end_as_one_row_each_with_the_files_pixels(tmp_path, tiny):
    pics = [package_file("skimage", name).read_bytes() for name in PHOTOS]
    root, tars = tmp_path / "photos", tmp_path / "tars"
    photo_folder(root, pics, tmp_path / "outside")
    tars.mkdir()
    linked_tar(tars / "links.tar", pics)
    sources = [images_source("photos", root), {"name": "web", "input": {"format": "webdataset", "paths": str(tars)}}]
    text = job_text("names", tmp_path / "out", tiny, sources, shard_size=4)
    manifest = run_job(parse_job_text(text), text, [])

    rows = ledger(tmp_path / "out")  # one row per key (asserted there)
    got = {key.removeprefix("links.tar#"): row for key, row in rows.items()}  # keys relative to each folder
    assert got == {
        "a.png": ("ok", "ok"),
        "bad%FF.png": ("ok", "ok"),
        "sub/c.png": ("ok", "ok"),
        "up": ("failed", "link_outside_root"),
        "out.png": ("failed", "link_outside_root"),
        "dangling.png": ("failed", "broken_link"),
        "pipe.png": ("failed", "read_error"),
        "000": ("ok", "ok"),
        "001": ("ok", "ok"),
        "002": ("ok", "ok"),
        "bad%FE": ("ok", "ok"),
        "003": ("failed", "link_outside_root"),
        "004": ("failed", "broken_link"),
        "005": ("ok", "ok"),
    }
    counts = {name: (s["inputs"], s["ok"], s["failed"]) for name, s in manifest["sources"].items()}
    assert counts == {"photos": (7, 3, 4), "web": (7, 5, 2)}

    tokenizer = load(tiny, device="cpu")
    settings = DecodeSettings(tokenizer.image_size)
    direct = [
        tokenizer.encode(
            decode_item(ItemRef("s", "k", "u", {"image": Part("k", p)}), settings).frames[0].pixels[None].copy()
        )[0].tolist()
        for p in pics
    ]
    tokens = {r["frames"][0]["uri"]: r["tokens"] for r in read_sentences(str(tmp_path / "out")).to_pylist()}
    expected = {
        f"{root}/a.png": 0,
        f"{root}/bad%FF.png": 1,
        f"{root}/sub/c.png": 2,
        f"{tars}/links.tar#000.png": 0,
        f"{tars}/links.tar#001.png": 0,
        f"{tars}/links.tar#002.png": 0,
        f"{tars}/links.tar#bad%FE.png": 1,
        f"{tars}/links.tar#005.png": 2,
    }
    assert sorted(tokens) == sorted(expected)
    for uri, pic in expected.items():  # the escaped name read its own file; a link member its target's bytes
        assert tokens[uri] == direct[pic], uri
    assert np.unique([tuple(t) for t in direct], axis=0).shape[0] == 3  # three different photos


def test_follow_links_is_a_job_option_of_the_formats_that_list_folders(tmp_path):
    inputs = tmp_path / "in"
    for fmt in ("images", "webdataset", "videos", "frame_folders", "multiview"):
        source = {"name": "s", "input": {"format": fmt, "paths": str(inputs), "follow_links": "outside"}}
        assert parse_job_text(job_text("j", tmp_path / "out", "builtin:tiny", [source])).sources[0]
    source = images_source("s", inputs, follow_links="always")
    with pytest.raises(JobConfigError, match="follow_links"):
        parse_job_text(job_text("j", tmp_path / "out", "builtin:tiny", [source]))
