import io
import os

import numpy as np
import pytest
from PIL import Image

from lvm_data.media.contract import DecodeSettings
from lvm_data.media.decode import decode_item
from lvm_data.media.resize import resize
from lvm_data.outcomes import ItemError
from lvm_data.sources.files import ImageFiles
from lvm_data.sources.listing import SourceError, expand_paths


@pytest.fixture
def tree(tmp_path):
    for name in ("a/1.jpg", "a/2.PNG", "a/readme.txt", "b/3.webp", "b/c/4.gif", "b/c/5.tif"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return tmp_path


def source(paths, **options):
    return ImageFiles("photos", {"format": "images", "paths": paths, "shard_size": 2, **options})


def test_folders_keep_image_extensions_recursively_sorted(tree):
    files = expand_paths("s", [str(tree)], ("jpg", "png", "webp", "gif", "tif"))
    assert [f[len(str(tree)) + 1 :] for f in files] == ["a/1.jpg", "a/2.PNG", "b/3.webp", "b/c/4.gif", "b/c/5.tif"]


def test_globs_keep_every_match_so_non_images_become_rows(tree):
    files = expand_paths("s", [str(tree / "a" / "*")], ("jpg",))
    assert [f.rsplit("/", 1)[-1] for f in files] == ["1.jpg", "2.PNG", "readme.txt"]


def test_overlapping_entries_are_deduplicated(tree):
    files = expand_paths("s", [str(tree / "a"), str(tree / "a" / "1.jpg"), str(tree / "**" / "*.jpg")], ("jpg",))
    assert [f.rsplit("/", 1)[-1] for f in files] == ["1.jpg"]


def test_an_entry_matching_nothing_is_an_error_naming_it(tree):
    with pytest.raises(SourceError, match=r"source 's': input path '.*nothing\*\.jpg' matches no files"):
        expand_paths("s", [str(tree), str(tree / "nothing*.jpg")], ("jpg",))


def test_plan_chunks_sorted_files_into_units_and_read_lists_them(tree):
    src = source(str(tree))
    units = src.plan()
    assert [(u.id, u.n_items) for u in units] == [("000000", 2), ("000001", 2), ("000002", 1)]
    refs = list(src.read(units[0]))
    assert [r.key for r in refs] == ["a/1.jpg", "a/2.PNG"]  # relative to the folder entry; the part: where it is
    assert all(r.unit == "000000" and r.source == "photos" and set(r.parts) == {"image"} for r in refs)
    assert refs[0].parts["image"].uri == str(tree / "a" / "1.jpg") and refs[0].parts["image"].data is None


def test_extensions_option(tree):
    assert [u.n_items for u in source(str(tree), extensions=["txt"]).plan()] == [1]


def _png(path, value: int) -> np.ndarray:
    """Write a 24x16 PNG (gradient + value) at a str or bytes path; returns its pixels."""
    pixels = np.zeros((16, 24, 3), np.uint8)
    pixels[..., 0] = np.arange(24, dtype=np.uint8) * 10
    pixels[..., 1] = value
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, buffer.getvalue())
    os.close(fd)
    return pixels


def _outcome(ref, settings):
    try:
        return "ok", decode_item(ref, settings)
    except ItemError as err:
        return err.reason.value, None


def test_bad_names_and_links_each_end_as_one_item_and_ok_ones_have_the_files_pixels(tmp_path):
    root, outside = tmp_path / "in", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    expected = {
        "a.png": _png(str(root / "a.png"), 1),
        "bad%FF.png": _png(os.fsencode(root) + b"/bad\xff.png", 2),
        "sub/b.png": _png(str(root / "sub" / "b.png"), 3),
    }
    _png(str(outside / "o.png"), 4)
    for target, link in (
        (".", "self"),
        ("..", "sub/up"),
        ("..", "up"),
        ("a.png", "alias.png"),
        ("../outside/o.png", "out.png"),
        ("gone.png", "dangling.png"),
    ):
        os.symlink(target, root / link)
    src = source(str(root), shard_size=100)
    refs = list(src.read(src.plan()[0]))
    settings = DecodeSettings(image_size=16, resize="squash")
    got = {r.key: _outcome(r, settings) for r in refs}  # keys relative to the folder, URIs where the files are
    assert all(r.uri == f"{root}/{r.key}" for r in refs)
    assert {k: v[0] for k, v in got.items()} == {
        "a.png": "ok",
        "bad%FF.png": "ok",
        "sub/b.png": "ok",
        "dangling.png": "broken_link",
        "out.png": "link_outside_root",
        "up": "link_outside_root",
    }  # the link to '..' at the root leaves it
    for key, pixels in expected.items():  # the escaped key read the file with that name: its own pixels
        want = resize(pixels, 16, "squash")
        assert np.array_equal(got[key][1].frames[0].pixels, want), key
    allowed = source(str(root), shard_size=100, follow_links="outside")
    keys = [r.key for r in allowed.read(allowed.plan()[0])]
    assert keys == ["a.png", "bad%FF.png", "dangling.png", "out.png", "sub/b.png"]  # up/outside/o.png: o.png again


def test_follow_links_must_be_inside_or_outside(tree):
    with pytest.raises(SourceError, match="input.follow_links is 'yes'; use inside"):
        source(str(tree), follow_links="yes").plan()
