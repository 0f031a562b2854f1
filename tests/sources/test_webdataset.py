import io
import json
import tarfile

from lvm_data.items import ERROR_META
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
    tar = write_tar(tmp_path / "00000.tar", [
        ("000.jpg", b"JPEG0"), ("000.json", json.dumps({"url": "u0", "label": 3}).encode()), ("000.txt", b"a cat"),
        ("001.png", b"PNG1"), ("001.txt", b"a dog"),
        ("002.json", b"{}"), ("002.txt", b"failed download"),
    ])
    src = source(str(tmp_path))
    (unit,) = src.plan()
    assert unit.id == "00000" and unit.n_items is None and unit.spec[1] == tar.stat().st_size
    refs = list(src.read(unit))
    assert [r.key for r in refs] == [f"{tar}#000", f"{tar}#001", f"{tar}#002"]
    first = refs[0]
    assert first.parts["image"].data == b"JPEG0" and first.parts["image"].uri == f"{tar}#000.jpg"
    assert first.meta == {"caption": "a cat", "json": {"url": "u0", "label": 3}}
    assert refs[1].parts["image"].data == b"PNG1"
    assert refs[2].parts == {} and refs[2].meta[ERROR_META]["reason"] == "not_media"


def test_repeated_key_and_truncated_tar_become_failed_refs(tmp_path):
    tar = write_tar(tmp_path / "a.tar", [("000.jpg", b"x" * 3000), ("001.jpg", b"y"), ("000.txt", b"again"),
                                         ("002.jpg", b"z" * 3000)])
    refs = list(source(str(tar)).read(source(str(tar)).plan()[0]))
    assert [r.meta.get(ERROR_META, {}).get("reason") for r in refs] == [None, None, "read_error", None]
    assert len({r.key for r in refs}) == len(refs)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(tar.read_bytes()[:3000])
    refs = list(source(str(cut)).read(source(str(cut)).plan()[0]))
    assert refs[-1].key == f"{cut}#<unreadable>" and refs[-1].meta[ERROR_META]["reason"] in ("truncated", "read_error")
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
