"""lvm_data.storage on memory:// (fsspec, in process), the URI forms it returns, and its errors for schemes
this environment cannot open. HTTP is exercised through expand_paths in tests/sources/test_listing.py."""

import os

import fsspec
import pyarrow.fs as pafs
import pytest

from lvm_data import storage
from lvm_data.errors import SourceError


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [
        ("gs://b/x", "gs"),
        ("s3://b/x", "s3"),
        ("HTTPS://h/x", "https"),
        ("hf://datasets/o/n", "hf"),
        ("memory://x", "memory"),
        ("data/x.png", ""),
        ("/abs/x", ""),
        ("builtin:tiny", ""),
        ("C:\\data\\x", ""),
    ],
)
def test_a_scheme_makes_a_uri_remote(uri, scheme):
    assert storage.scheme(uri) == scheme
    assert storage.is_remote(uri) is bool(scheme)


def test_memory_uris_write_read_list_and_delete(mem):
    storage.write_bytes(f"{mem}/a/1.png", b"one")
    storage.write_bytes(f"{mem}/a/deep/2.png", b"two")
    storage.write_bytes(f"{mem}/a/3.txt", b"three")
    assert storage.read_bytes(f"{mem}/a/1.png") == b"one" and storage.size(f"{mem}/a/3.txt") == 5
    assert storage.exists(f"{mem}/a/1.png") and not storage.exists(f"{mem}/a/none.png")
    assert storage.list_files(f"{mem}/a") == [f"{mem}/a/1.png", f"{mem}/a/3.txt", f"{mem}/a/deep/2.png"]
    assert storage.list_files(f"{mem}/a/", recursive=False) == [f"{mem}/a/1.png", f"{mem}/a/3.txt"]
    assert storage.glob(f"{mem}/a/**/*.png") == [f"{mem}/a/1.png", f"{mem}/a/deep/2.png"]
    assert not [u for u in storage.list_files(mem) if "/.tmp-" in u]  # writes are atomic: no temporary left
    storage.delete(f"{mem}/a/1.png")
    assert storage.list_files(f"{mem}/missing") == [] and not storage.exists(f"{mem}/a/1.png")


def test_returned_uris_are_written_like_the_prefix_and_open_again(mem):
    storage.write_bytes(f"{mem}/x/f.bin", b"f")
    three_slashes = mem.replace("memory://", "memory:///")
    for prefix in (mem, three_slashes):
        (uri,) = storage.list_files(f"{prefix}/x")
        assert uri == f"{prefix}/x/f.bin" and storage.read_bytes(uri) == b"f"
        assert storage.glob(f"{prefix}/x/*.bin") == [uri]


def test_gs_keeps_pyarrow_gcs_and_the_emulator_variable(monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # anonymous: nothing is contacted here
    fs, path = storage.filesystem("gs://bucket/key/x.tar")
    assert isinstance(fs, pafs.GcsFileSystem) and path == "bucket/key/x.tar"


def test_hf_uris_open_the_hub_filesystem_without_a_request():
    fs, path = storage.filesystem("hf://datasets/org/name/data/00000.tar")
    assert fs.type_name == "py::fsspec+hf" and path == "datasets/org/name/data/00000.tar"
    assert storage._uri_head("hf://datasets/org/name/data/", "datasets/org/name/data") == "hf://"


def test_file_infos_lists_a_folder_once_instead_of_asking_each_name(mem, monkeypatch):
    names = [f"{mem}/shards/{i:05d}.tar" for i in range(storage.LIST_FROM + 2)]
    for i, uri in enumerate(names):
        storage.write_bytes(uri, b"x" * i)
    asked = []
    one_by_one = storage._info
    monkeypatch.setattr(storage, "_info", lambda uri: asked.append(uri) or one_by_one(uri))
    missing = f"{mem}/shards/99999.tar"
    infos = storage.file_infos([*names, missing, f"{mem}/shards/"])
    assert [i.path for i in infos] == [*names, missing, f"{mem}/shards/"]
    assert [i.size for i in infos[: len(names)]] == list(range(len(names)))
    assert {i.type for i in infos[: len(names)]} == {pafs.FileType.File}
    assert (infos[-2].type, infos[-1].type) == (pafs.FileType.NotFound, pafs.FileType.Directory)
    assert asked == [missing, f"{mem}/shards/"]  # not in the listing: asked one by one


def test_file_infos_of_local_paths_keeps_them_as_given(tmp_path, monkeypatch):
    (tmp_path / "a.png").write_bytes(b"aa")
    monkeypatch.chdir(tmp_path)
    (found, folder, missing) = storage.file_infos(["a.png", ".", "b.png"])
    assert (found.path, found.type, found.size) == ("a.png", pafs.FileType.File, 2)
    assert (folder.type, missing.type) == (pafs.FileType.Directory, pafs.FileType.NotFound)


def test_a_missing_package_is_named_with_its_pip_install(monkeypatch):
    def without_s3fs(protocol):
        if protocol == "s3":
            raise ImportError("Install s3fs to access S3")  # what fsspec raises when s3fs is absent
        return real(protocol)

    real = fsspec.get_filesystem_class
    monkeypatch.setattr(fsspec, "get_filesystem_class", without_s3fs)
    with pytest.raises(storage.StorageError) as caught:
        storage.read_bytes("s3://bucket/x.tar")
    assert str(caught.value) == "s3://bucket/x.tar: reading s3:// needs the s3fs package; pip install s3fs"
    assert isinstance(caught.value, SourceError)  # the CLI prints a SourceError as one line (USER_ERRORS)


def test_a_missing_package_without_a_known_name_keeps_fsspecs_hint(monkeypatch):
    def absent(protocol):
        raise ImportError("Install exoticfs to access exotic")

    monkeypatch.setattr(fsspec, "get_filesystem_class", absent)
    with pytest.raises(storage.StorageError, match=r"exotic://b/x: reading exotic:// needs a package .*exoticfs"):
        storage.filesystem("exotic://b/x")


def test_an_unknown_scheme_says_what_works():
    with pytest.raises(
        storage.StorageError,
        match=r"nosuch://b/x: unknown location scheme nosuch://; use a local "
        r"path, gs://, s3://",
    ):
        storage.exists("nosuch://b/x")


def _write(path: bytes, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.close(fd)


def test_a_local_folder_with_a_non_utf8_name_lists_and_each_uri_opens_again(tmp_path):
    # pyarrow's FileInfo raised UnicodeDecodeError on such a name, which stopped the job while planning
    _write(os.fsencode(tmp_path) + b"/bad\xff.png", b"bad bytes")
    (tmp_path / "good.png").write_bytes(b"good")
    files = storage.list_files(str(tmp_path))
    assert files == [f"{tmp_path}/bad%FF.png", f"{tmp_path}/good.png"]
    assert storage.list_files(str(tmp_path), recursive=False) == files
    assert storage.read_bytes(files[0]) == b"bad bytes" and storage.size(files[0]) == 9 and storage.exists(files[0])
    with storage.open_input(files[0]) as f:
        f.seek(4)
        assert f.read() == b"bytes"
    with storage.open_input_stream(files[0]) as f:
        assert f.read() == b"bad bytes"
    assert storage.glob(f"{tmp_path}/*.png") == files
    assert not storage.exists(f"{tmp_path}/bad%FE.png")


def test_a_link_loop_in_a_local_folder_lists_each_file_once(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.png").write_bytes(b"a")
    os.symlink("..", tmp_path / "sub" / "up")
    os.symlink(".", tmp_path / "self")
    assert storage.list_files(str(tmp_path)) == [f"{tmp_path}/sub/a.png"]
    assert storage.glob(f"{tmp_path}/**/*.png") == [f"{tmp_path}/sub/a.png"]
    os.symlink("/", tmp_path / "root")
    tree = storage.list_tree(str(tmp_path))
    assert tree.files == [f"{tmp_path}/sub/a.png"]
    assert [(r.uri, r.reason.value) for r in tree.refused] == [(f"{tmp_path}/root", "link_outside_root")]


def test_remote_listings_have_nothing_refused(mem):
    storage.write_bytes(f"{mem}/t/a.png", b"a")
    assert storage.list_tree(f"{mem}/t") == storage.Tree([f"{mem}/t/a.png"])
    assert storage.glob_tree(f"{mem}/t/*.png").files == [f"{mem}/t/a.png"]


def test_an_escaped_name_from_a_listing_can_be_named_as_an_input_again(tmp_path):
    os.mkdir(os.fsencode(tmp_path) + b"/dir\xfe")
    _write(os.fsencode(tmp_path) + b"/dir\xfe/x.png", b"x")
    (folder, file, missing) = storage.file_infos(
        [f"{tmp_path}/dir%FE", f"{tmp_path}/dir%FE/x.png", f"{tmp_path}/dir%FD"]
    )
    assert (folder.type, file.type, file.size, missing.type) == (
        pafs.FileType.Directory,
        pafs.FileType.File,
        1,
        pafs.FileType.NotFound,
    )
    assert storage.list_files(f"{tmp_path}/dir%FE") == [f"{tmp_path}/dir%FE/x.png"]
