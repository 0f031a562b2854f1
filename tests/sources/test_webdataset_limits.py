"""A webdataset member over `max_item_bytes` is never read into memory: its sample fails `file_too_large`, and the
rest of the tar (gzip'ed or plain) is read on (issue 15, memory)."""

import gzip
import io
import tarfile

import pytest

from lvm_data.items import ERROR_META
from lvm_data.sources import webdataset
from lvm_data.sources.webdataset import WebDataset
from lvm_data.testing import ZeroStream

Zeros = ZeroStream


def write_shard(path, members, compressed: bool) -> None:
    """members: (name, bytes or a size of zeros); written streaming, so a large member costs no memory."""
    raw = gzip.open(path, "wb", compresslevel=1) if compressed else open(path, "wb")
    with raw, tarfile.open(fileobj=raw, mode="w|") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = data if isinstance(data, int) else len(data)
            tar.addfile(info, io.BufferedReader(Zeros(data), 2**20) if isinstance(data, int) else io.BytesIO(data))


def read(path, limit: int) -> dict:
    src = WebDataset("web", {"format": "webdataset", "paths": str(path), "shard_size": 100, "max_item_bytes": limit})
    (unit,) = src.plan()
    return {ref.key.rsplit("#", 1)[1]: ref for ref in src.read(unit)}


@pytest.mark.parametrize("compressed", [True, False])
def test_an_oversized_member_fails_its_sample_and_is_never_read_whole(tmp_path, monkeypatch, compressed):
    write_shard(
        tmp_path / "s.tar",
        [
            ("000.jpg", b"JPEG0"),
            ("000.txt", b"a cat"),
            ("001.png", 16 * 2**20),
            ("001.txt", b"zeros"),
            ("002.jpg", b"JPEG2"),
        ],
        compressed,
    )
    reads = []
    real = tarfile.ExFileObject.read

    def recorded(self, size=-1):
        reads.append(size)
        return real(self, size)

    monkeypatch.setattr(tarfile.ExFileObject, "read", recorded)
    refs = read(tmp_path / "s.tar", limit=2**20)
    assert list(refs) == ["000", "001", "002"]
    assert refs["000"].parts["image"].data == b"JPEG0" and refs["000"].meta["caption"] == "a cat"
    assert refs["002"].parts["image"].data == b"JPEG2"
    error = refs["001"].meta[ERROR_META]
    assert error["reason"] == "file_too_large" and not refs["001"].parts
    assert "member 001.png has 16777216 bytes, over the limit of 1048576 bytes (max_item_bytes)" in error["detail"]
    assert max(size for size in reads if size != -1) <= 2**20  # the big member: 1 MiB reads, never read(-1)


def test_an_oversized_caption_fails_the_sample_and_an_unused_member_is_only_skipped(tmp_path):
    write_shard(
        tmp_path / "s.tar",
        [("000.jpg", b"JPEG0"), ("000.txt", 2000), ("001.jpg", b"JPEG1"), ("001.npy", 5000)],
        compressed=True,
    )
    refs = read(tmp_path / "s.tar", limit=1000)
    assert refs["000"].meta[ERROR_META]["reason"] == "file_too_large"
    assert "member 000.txt has 2000 bytes" in refs["000"].meta[ERROR_META]["detail"]
    assert refs["001"].parts["image"].data == b"JPEG1" and ERROR_META not in refs["001"].meta


def test_the_default_limit_applies_without_the_option(tmp_path, monkeypatch):
    monkeypatch.setattr(webdataset, "DEFAULT_MAX_ITEM_BYTES", 4)
    write_shard(tmp_path / "s.tar", [("000.jpg", b"JPEG0")], compressed=False)
    src = WebDataset("web", {"format": "webdataset", "paths": str(tmp_path / "s.tar"), "shard_size": 100})
    (ref,) = src.read(src.plan()[0])
    assert ref.meta[ERROR_META]["reason"] == "file_too_large"
