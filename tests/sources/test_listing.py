"""expand_paths and brace patterns: locally, on memory:// and on http:// against a server started here."""

import functools
import http.server
import threading

import fsspec
import pytest

from lvm_data import storage
from lvm_data.sources.listing import SourceError, expand_braces, expand_inputs, expand_paths
from lvm_data.sources.webdataset import WebDataset
from lvm_data.testing import write_tar


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _NoIndex(_Quiet):
    def list_directory(self, path):  # a server (or bucket website) that shows no folder listing
        self.send_error(404)


def _serve(folder, handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def served(tmp_path):
    """`served(handler=_Quiet) -> URL` of tmp_path/www on a local HTTP server; stopped when the test ends."""
    (tmp_path / "www").mkdir()
    servers = []

    def start(handler=_Quiet):
        server, url = _serve(tmp_path / "www", handler)
        servers.append(server)
        return url

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# brace patterns


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("laion/{00000..00003}.tar", ["laion/00000.tar", "laion/00001.tar", "laion/00002.tar", "laion/00003.tar"]),
        ("{8..11}", ["8", "9", "10", "11"]),  # no leading zero: no padding
        ("{08..10}", ["08", "09", "10"]),
        ("{0..0010}", ["0000", "0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010"]),
        ("{train,val,test}.tar", ["train.tar", "val.tar", "test.tar"]),
        ("shard{,.bak}", ["shard", "shard.bak"]),
        ("{a,b}/{0..1}-{x,y}", ["a/0-x", "a/0-y", "a/1-x", "a/1-y", "b/0-x", "b/0-y", "b/1-x", "b/1-y"]),
        ("gs://b/{1..2}/*.jpg", ["gs://b/1/*.jpg", "gs://b/2/*.jpg"]),
        ("plain/path.tar", ["plain/path.tar"]),
    ],
)
def test_expand_braces(pattern, names):
    assert expand_braces(pattern) == names


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("{5..1}", r"\{5\.\.1\} counts down; ranges go up: \{1\.\.5\}"),
        ("x/{00000..00009.tar", r"'\{' at position 2 is not closed"),
        ("x}/{1..2}", r"'\}' closes no '\{'"),
        ("x/{1..2}}", r"'\}' at position 8 closes no '\{'"),
        ("{a,{b,c}}", r"nested braces are not supported"),
        ("{a..e}", r"\{a\.\.e\} is not a range of whole numbers"),
        ("{1..10..2}", r"is not a range of whole numbers"),
        ("{x}", r"\{x\} is neither a range \{first\.\.last\} nor alternatives \{a,b\}"),
        ("{0..9999999}", r"more than 1,000,000 names"),
        ("{0..999}/{0..9999}", r"more than 1,000,000 names"),
    ],
)
def test_bad_brace_patterns_are_refused(pattern, problem):
    with pytest.raises(ValueError, match=problem):
        expand_braces(pattern)


# expand_paths, local


def test_a_local_brace_range_names_files(tmp_path):
    for i in range(3):
        (tmp_path / f"{i:05d}.tar").write_bytes(b"t")
    assert expand_paths("web", str(tmp_path / "{00000..00002}.tar"), ("tar",)) == [
        str(tmp_path / f"{i:05d}.tar") for i in range(3)
    ]


def test_alternatives_can_be_folders_files_and_globs(tmp_path):
    for rel in ("train/a.jpg", "train/b.txt", "val/c.jpg", "extra.png", "more/d.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    found = expand_paths("s", str(tmp_path / "{train,val,extra.png,more/*.png}"), ("jpg",))
    assert found == [str(tmp_path / rel) for rel in ("extra.png", "more/d.png", "train/a.jpg", "val/c.jpg")]


def test_an_entry_without_braces_that_matches_nothing_is_reported_as_before(tmp_path):
    with pytest.raises(
        SourceError,
        match=r"source 's': input path '.*/nope' matches no files with extensions "
        r"jpg; check the path in the job file",
    ):
        expand_paths("s", str(tmp_path / "nope"), ("jpg",))


def test_a_bad_brace_pattern_names_the_source_and_the_entry():
    with pytest.raises(SourceError, match=r"source 'web': input path 'x/\{5\.\.1\}\.tar': \{5\.\.1\} counts down"):
        expand_paths("web", ["x/{5..1}.tar"], None)


# expand_paths, memory://


def test_memory_paths_end_to_end_through_expand_paths(mem):
    for i in range(12):
        storage.write_bytes(f"{mem}/laion/{i:05d}.tar", f"tar {i}".encode())
    storage.write_bytes(f"{mem}/photos/a.JPG", b"jpeg")
    storage.write_bytes(f"{mem}/photos/notes.txt", b"text")
    found = expand_paths(
        "s", [f"{mem}/laion/{{00000..00011}}.tar", f"{mem}/photos", f"{mem}/laion/0000[0-1].tar"], ("jpg", "tar")
    )
    assert found == sorted([f"{mem}/laion/{i:05d}.tar" for i in range(12)] + [f"{mem}/photos/a.JPG"])
    assert [storage.read_bytes(uri) for uri in found[:2]] == [b"tar 0", b"tar 1"]


def test_a_range_with_missing_shards_names_a_few_of_them(mem):
    for i in (0, 1, 2, 5):
        storage.write_bytes(f"{mem}/laion/{i:05d}.tar", b"t")
    with pytest.raises(SourceError) as caught:
        expand_paths("laion", f"{mem}/laion/{{00000..00012}}.tar", ("tar",))
    shown = ", ".join(f"{mem}/laion/{i:05d}.tar" for i in (3, 4, 6, 7, 8))
    assert str(caught.value) == (
        f"source 'laion': input path '{mem}/laion/{{00000..00012}}.tar' stands for 13 "
        f"names, and 9 of them match no files with extensions tar: {shown} and 4 more; "
        "check the range or the files"
    )


def test_a_missing_package_stops_planning_with_the_source_and_the_pip_install(monkeypatch):
    def without_s3fs(protocol):
        raise ImportError("Install s3fs to access S3")

    monkeypatch.setattr(fsspec, "get_filesystem_class", without_s3fs)
    with pytest.raises(
        SourceError,
        match=r"^source 'laion': s3://bucket/laion\S*: reading s3:// needs the s3fs "
        r"package; pip install s3fs$",
    ):
        expand_paths("laion", "s3://bucket/laion/{00000..00009}.tar", ("tar",))


# expand_paths, http://


def _www(tmp_path, count=10):
    for i in range(count):
        (tmp_path / "www" / "shards").mkdir(parents=True, exist_ok=True)
        (tmp_path / "www" / "shards" / f"{i:05d}.tar").write_bytes(f"shard {i}".encode())


def test_http_files_named_one_by_one_and_by_a_range(tmp_path, served):
    _www(tmp_path)
    url = served()
    named = [f"{url}/shards/00003.tar", f"{url}/shards/00001.tar?download=1"]  # '?' starts a query, not a glob
    assert expand_paths("s", named, ("tar",)) == sorted(named)
    ranged = expand_paths("s", f"{url}/shards/{{00000..00009}}.tar", ("tar",))
    assert ranged == [f"{url}/shards/{i:05d}.tar" for i in range(10)]
    assert [storage.read_bytes(uri) for uri in ranged[:2]] == [b"shard 0", b"shard 1"]
    assert storage.size(ranged[9]) == len(b"shard 9")


def test_http_globs_and_folders_use_the_servers_index_pages(tmp_path, served):
    _www(tmp_path, 3)
    url = served()
    expected = [f"{url}/shards/{i:05d}.tar" for i in range(3)]
    assert expand_paths("s", f"{url}/shards/*.tar", None) == expected
    assert expand_paths("s", f"{url}/shards/", ("tar",)) == expected  # a trailing / marks a folder


def test_http_range_without_index_pages_is_checked_name_by_name(tmp_path, served):
    _www(tmp_path)
    url = served(_NoIndex)
    assert len(expand_paths("s", f"{url}/shards/{{00000..00009}}.tar", ("tar",))) == 10
    with pytest.raises(
        SourceError,
        match=r"stands for 12 names, and 2 of them match no files with extensions tar: "
        r"http://.*/shards/00010.tar, http://.*/shards/00011.tar; check the range",
    ):
        expand_paths("s", f"{url}/shards/{{00000..00011}}.tar", ("tar",))


def test_webdataset_shards_over_http_by_a_range(tmp_path, served):
    (tmp_path / "www" / "laion").mkdir(parents=True)
    members = (("jpg", b"JPEG"), ("txt", b"a cat"))
    for shard in range(2):
        write_tar(
            tmp_path / "www" / "laion" / f"{shard:05d}.tar",
            [(f"{shard}{k}.{ext}", data) for k in range(2) for ext, data in members],
        )
    url = served()
    source = WebDataset(
        "web", {"format": "webdataset", "paths": f"{url}/laion/{{00000..00001}}.tar", "shard_size": 100}
    )
    units = source.plan()
    assert [u.id for u in units] == ["00000", "00001"]
    refs = [ref for unit in units for ref in source.read(unit)]
    assert [r.key for r in refs] == ["00000.tar#00", "00000.tar#01", "00001.tar#10", "00001.tar#11"]  # relative
    assert refs[0].parts["image"].uri == f"{url}/laion/00000.tar#00.jpg"  # the part: where the bytes are
    assert {r.parts["image"].data for r in refs} == {b"JPEG"} and {r.meta["caption"] for r in refs} == {"a cat"}


# item keys: relative to each entry's root, the same locally, on memory:// and on http://

KEY_FILES = (
    "photos/a/1.jpg",
    "photos/2.jpg",
    "more/x.png",
    "more/deep/y.png",
    "laion/00000.tar",
    "laion/00001.tar",
    "one/z.jpg",
    "split/train/t.jpg",
    "split/val/v.jpg",
)


def _key_entries(root: str) -> list[str]:
    """A folder (a trailing / marks one on http), a glob, a brace range, a named file, brace alternatives, and a
    glob overlapping the glob."""
    return [
        f"{root}/photos/",
        f"{root}/more/*.png",
        f"{root}/laion/{{00000..00001}}.tar",
        f"{root}/one/z.jpg",
        f"{root}/split/{{train,val}}/*.jpg",
        f"{root}/more/**/*.png",
    ]


EXPECTED_KEYS = {
    "photos/a/1.jpg": "a/1.jpg",
    "photos/2.jpg": "2.jpg",
    "more/x.png": "x.png",
    "more/deep/y.png": "deep/y.png",
    "laion/00000.tar": "00000.tar",
    "laion/00001.tar": "00001.tar",
    "one/z.jpg": "z.jpg",
    "split/train/t.jpg": "train/t.jpg",
    "split/val/v.jpg": "val/v.jpg",
}


def test_keys_are_paths_below_each_entrys_root_wherever_the_files_are(tmp_path, mem, served):
    for name in KEY_FILES:
        (tmp_path / "www" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "www" / name).write_bytes(b"x")
        storage.write_bytes(f"{mem}/{name}", b"x")
    url = served()
    for root in (str(tmp_path / "www"), mem, url):
        inputs = expand_inputs("s", _key_entries(root), None)
        assert inputs.keys == {f"{root}/{name}": key for name, key in EXPECTED_KEYS.items()}, root
        assert [e.key for e in inputs.entries()] == sorted(EXPECTED_KEYS.values())  # units are cut in key order


def test_a_relative_glob_finds_the_files_a_folder_entry_finds_once(tmp_path, monkeypatch):
    for name in ("data/a.png", "data/sub/b.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    inputs = expand_inputs("s", ["data/*.png", "data"], None)
    assert inputs.keys == {f"{tmp_path}/data/a.png": "a.png", f"{tmp_path}/data/sub/b.png": "sub/b.png"}


def test_two_files_with_one_key_stop_the_planning_and_braces_tell_them_apart(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "1.jpg").write_bytes(b"x")
    with pytest.raises(
        SourceError,
        match=r"source 's': \S+/a/1.jpg and \S+/b/1.jpg both have the item key '1.jpg'.*"
        r"name such folders by one entry \(\{a,b\}, or their parent folder\)",
    ):
        expand_inputs("s", [str(tmp_path / "a"), str(tmp_path / "b")], None)
    assert [e.key for e in expand_inputs("s", str(tmp_path / "{a,b}"), None).entries()] == ["a/1.jpg", "b/1.jpg"]
