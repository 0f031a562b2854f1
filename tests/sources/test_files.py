import pytest

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
    assert [f[len(str(tree)) + 1:] for f in files] == ["a/1.jpg", "a/2.PNG", "b/3.webp", "b/c/4.gif", "b/c/5.tif"]


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
    assert [r.key.rsplit("/", 1)[-1] for r in refs] == ["1.jpg", "2.PNG"]
    assert all(r.unit == "000000" and r.source == "photos" and set(r.parts) == {"image"} for r in refs)
    assert refs[0].parts["image"].uri == refs[0].key and refs[0].parts["image"].data is None


def test_extensions_option(tree):
    assert [u.n_items for u in source(str(tree), extensions=["txt"]).plan()] == [1]
