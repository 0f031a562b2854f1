"""Folder-tree listings (lvm_data.sources.trees) with names that are not UTF-8 and links: every refused entry
becomes one failed item in the sources built on them."""

import os

import numpy as np
import pytest
from PIL import Image

from lvm_data.items import ERROR_META
from lvm_data.media.contract import DecodeSettings
from lvm_data.media.decode import decode_item
from lvm_data.media.samples import videos
from lvm_data.sources.listing import RefusedEntry
from lvm_data.sources.paired import Paired
from lvm_data.sources.sequences import MultiViews
from lvm_data.sources.trees import rooted_inputs, unheld
from lvm_data.sources.videos import FrameFolders, VideoFiles


def image(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((12, 16, 3), value, np.uint8)).save(path)


def reasons(source) -> dict[str, str | None]:
    return {ref.key: ref.meta.get(ERROR_META, {}).get("reason") for unit in source.plan() for ref in source.read(unit)}


def uris(source) -> dict[str, str]:
    return {ref.key: ref.uri for unit in source.plan() for ref in source.read(unit)}


@pytest.fixture
def frames(tmp_path):
    """frames/ with clip folders a/ and a non-UTF-8 one, a link a/up to '..' (the root), a link to a folder
    outside and a link to a frame outside inside a/."""
    root = tmp_path / "frames"
    for i in range(3):
        image(root / "a" / f"{i}.png", i)
    os.mkdir(os.fsencode(root) + b"/clip\xff")
    for i in range(2):
        image(tmp_path / "x.png", i)
        os.rename(tmp_path / "x.png", os.fsencode(root) + b"/clip\xff/" + f"{i}.png".encode())
    image(tmp_path / "elsewhere" / "clip" / "0.png")
    image(tmp_path / "elsewhere" / "clip" / "1.png")
    os.symlink("..", root / "a" / "up")
    os.symlink(tmp_path / "elsewhere" / "clip", root / "ext")
    os.symlink(tmp_path / "elsewhere" / "clip" / "0.png", root / "a" / "9.png")
    return root


def test_rooted_inputs_keep_relative_paths_and_return_what_was_refused(frames):
    files, refused = rooted_inputs("s", "paths", str(frames), ["png"])
    assert [rel for _, rel in files] == ["a/0.png", "a/1.png", "a/2.png", "clip%FF/0.png", "clip%FF/1.png"]
    assert [(r.uri[len(str(frames)) + 1 :], r.reason.value, r.folder) for r in refused] == [
        ("a/9.png", "link_outside_root", False),
        ("ext", "link_outside_root", True),
    ]  # a/up: the root itself
    # a refused frame inside an item folder adds nothing there; the others are items of their own
    assert [e.uri[len(str(frames)) + 1 :] for e in unheld(refused, [f"{frames}/a"])] == ["ext"]
    assert all(isinstance(e, RefusedEntry) for e in unheld(refused))
    files, refused = rooted_inputs("s", "paths", str(frames), ["png"], links="outside")
    # elsewhere/clip/0.png once, under the first link path that reaches it (a/9.png before ext/0.png)
    assert [rel for _, rel in files] == [
        "a/0.png",
        "a/1.png",
        "a/2.png",
        "a/9.png",
        "clip%FF/0.png",
        "clip%FF/1.png",
        "ext/1.png",
    ]


def test_frame_folders_give_each_refused_folder_its_own_row(frames):
    got = reasons(FrameFolders("f", {"paths": str(frames), "shard_size": 10}))
    assert got == {"a": None, "clip%FF": None, "ext": "link_outside_root"}  # keyed relative to the root
    assert uris(FrameFolders("f", {"paths": str(frames), "shard_size": 10}))["ext"] == f"{frames}/ext"
    got = reasons(FrameFolders("f", {"paths": str(frames), "shard_size": 10, "follow_links": "outside"}))
    assert got == {"a": None, "clip%FF": None, "ext": None}


def test_paired_and_multiview_refused_files_are_failed_items(tmp_path):
    image(tmp_path / "rgb" / "0.png")
    image(tmp_path / "seg" / "0.png")
    image(tmp_path / "other" / "1.png")
    os.symlink(tmp_path / "other" / "1.png", tmp_path / "rgb" / "1.png")
    os.symlink("missing.png", tmp_path / "seg" / "2.png")
    paired = Paired(
        "p", {"images": str(tmp_path / "rgb"), "annotations": {"segmentation": str(tmp_path / "seg")}, "shard_size": 10}
    )
    assert reasons(paired) == {"0": None, "1.png": "link_outside_root", "2.png": "broken_link"}
    assert uris(paired)["1.png"] == f"{tmp_path}/rgb/1.png" and uris(paired)["2.png"] == f"{tmp_path}/seg/2.png"
    views = MultiViews("m", {"paths": str(tmp_path / "rgb"), "shard_size": 10})
    assert reasons(views) == {".": None, "1.png": "link_outside_root"}  # "." : the root folder's own views


def test_video_files_refused_by_the_listing_are_failed_items(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.mp4").write_bytes(b"x")
    (tmp_path / "b.mp4").write_bytes(b"x")
    os.symlink(tmp_path / "b.mp4", tmp_path / "in" / "b.mp4")
    source = VideoFiles("v", {"paths": str(tmp_path / "in"), "shard_size": 10})
    assert reasons(source) == {"a.mp4": None, "b.mp4": "link_outside_root"}
    assert uris(source) == {"a.mp4": f"{tmp_path}/in/a.mp4", "b.mp4": f"{tmp_path}/in/b.mp4"}


def test_a_video_with_a_non_utf8_name_decodes_like_the_same_file_named_plainly(tmp_path):
    data = videos()[0].read_bytes()
    (tmp_path / "plain.mp4").write_bytes(data)
    fd = os.open(os.fsencode(tmp_path) + b"/bad\xff.mp4", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, data)
    os.close(fd)
    clip = {"frames": 2, "stride": [4], "offset": "start"}  # not seeded by the key, so both files give the same clips
    source = VideoFiles("v", {"paths": str(tmp_path), "shard_size": 10, "clip": clip})
    refs = {ref.key.rsplit("/", 1)[-1]: ref for unit in source.plan() for ref in source.read(unit)}
    assert sorted(refs) == ["bad%FF.mp4", "plain.mp4"]
    settings = DecodeSettings(16)
    bad, plain = (decode_item(refs[k], settings).frames for k in ("bad%FF.mp4", "plain.mp4"))
    assert len(bad) == len(plain) > 0
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(bad, plain, strict=True))


def test_a_frame_folder_with_a_non_utf8_name_decodes(frames):
    source = FrameFolders("f", {"paths": str(frames), "shard_size": 10, "clip": {"frames": 2, "stride": [1]}})
    (ref,) = [r for u in source.plan() for r in source.read(u) if r.key.endswith("clip%FF")]
    pixels = [f.pixels for f in decode_item(ref, DecodeSettings(16)).frames]
    assert len(pixels) == 2 and [int(p[0, 0, 0]) for p in pixels] == [0, 1]  # frames 0.png and 1.png, in order
