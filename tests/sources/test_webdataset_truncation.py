"""A webdataset tar cut short anywhere ends with one `truncated` row for its unread rest (issue 15): tarfile reads a
tar cut at or inside a member header as a normal end of archive, so without a check the samples after the cut get
no row at all."""

import gzip
import io
import zlib

import pytest

from lvm_data.items import ERROR_META
from lvm_data.sources.webdataset import WebDataset
from lvm_data.testing import write_tar

# 000.jpg: header at 0, data 512..1112; 000.txt: header at 1536; 001.jpg: header at 2560; 002.jpg: header at 3584,
# data 4096..5096; end-of-archive zero blocks from 5120
MEMBERS = [("000.jpg", b"J" * 600), ("000.txt", b"a"), ("001.jpg", b"K"), ("002.jpg", b"L" * 1000)]


def rows(path) -> list[tuple[str, str | None, str]]:
    """(member key, failure reason or None, failure detail) of each row the tar gives."""
    src = WebDataset("web", {"format": "webdataset", "paths": str(path), "shard_size": 100})
    (unit,) = src.plan()
    return [
        (
            r.key.rsplit("#", 1)[1],
            r.meta.get(ERROR_META, {}).get("reason"),
            r.meta.get(ERROR_META, {}).get("detail", ""),
        )
        for r in src.read(unit)
    ]


@pytest.fixture
def whole(tmp_path) -> bytes:
    return write_tar(tmp_path / "whole.tar", MEMBERS).read_bytes()


@pytest.mark.parametrize(
    ("cut", "ok", "at"),
    [
        (2560, ["000"], "at byte 2560: the tar is cut short at a member header"),  # at a header boundary
        (2660, ["000"], "at byte 2660: the tar is cut short at the member header at byte 2560"),  # inside a header
        (3584, ["000", "001"], "at byte 3584"),
        (5120, ["000", "001", "002"], "at byte 5120"),  # every member whole, the end-of-archive blocks gone
        (4396, ["000", "001"], "unexpected end of data"),  # inside member data (reported before too)
        (2100, ["000"], "unexpected end of data"),  # inside a member's padding
    ],
)
def test_a_tar_cut_anywhere_ends_with_one_truncated_row(tmp_path, whole, cut, ok, at):
    cut_tar = tmp_path / "cut.tar"
    cut_tar.write_bytes(whole[:cut])
    got = rows(cut_tar)
    assert [(key, reason) for key, reason, _ in got] == [(k, None) for k in ok] + [("<unreadable>", "truncated")]
    detail = got[-1][2]
    assert str(cut_tar) in detail and at in detail and "samples after this point were not read" in detail


def test_a_whole_tar_and_one_with_a_single_end_block_give_no_failed_row(tmp_path, whole):
    assert rows(write_tar(tmp_path / "a.tar", MEMBERS)) == [(k, None, "") for k in ("000", "001", "002")]
    one_block = tmp_path / "one_block.tar"
    one_block.write_bytes(whole[: 5120 + 512])  # the end block is whole: nothing can be missing
    assert [reason for _, reason, _ in rows(one_block)] == [None, None, None]


def gzip_cut_at(data: bytes, cut: int) -> bytes:
    """A gzip stream of `data` cut where it has inflated exactly `data[:cut]` (a sync flush there)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
        gz.write(data[:cut])
        gz.flush(zlib.Z_SYNC_FLUSH)
        flushed = buf.tell()
        gz.write(data[cut:])
    return buf.getvalue()[:flushed]


@pytest.mark.parametrize(("cut", "ok"), [(2560, ["000"]), (2660, ["000"]), (4396, ["000", "001"])])
def test_a_gzip_tar_cut_ends_with_one_truncated_row(tmp_path, whole, cut, ok):
    tgz = tmp_path / "cut.tgz"  # inflated by tarfile: its offsets are those of the uncompressed tar
    tgz.write_bytes(gzip_cut_at(whole, cut))
    got = rows(tgz)
    assert [(key, reason) for key, reason, _ in got] == [(k, None) for k in ok] + [("<unreadable>", "truncated")]
    assert str(tgz) in got[-1][2]
    if cut != 4396:
        assert f"at byte {cut} of the uncompressed tar" in got[-1][2]
    targz = tmp_path / "cut.tar.gz"  # inflated by Arrow, which says so when the stream ends early
    targz.write_bytes(gzip_cut_at(whole, cut))
    got = rows(targz)
    assert got[-1][:2] == ("<unreadable>", "truncated") and str(targz) in got[-1][2]
    assert [reason for _, reason, _ in got[:-1]] == [None] * (len(got) - 1)  # rows before the cut are whole
    whole_gz = tmp_path / "whole.tar.gz"
    whole_gz.write_bytes(gzip.compress(whole))
    assert [reason for _, reason, _ in rows(whole_gz)] == [None, None, None]
