import numpy as np
import pytest
from PIL import Image

from lvm_data.items import ERROR_META
from lvm_data.media.contract import DecodeSettings
from lvm_data.media.decode import decode_item
from lvm_data.media.parts import AnnotationPart
from lvm_data.outcomes import ItemError, Reason
from lvm_data.sources.listing import SourceError
from lvm_data.sources.paired import Paired


def touch_image(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((12, 16, 3), value, np.uint8)).save(path)


def touch_mask(path, value=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((12, 16), value, np.uint8), mode="L").save(path)


def refs(source):
    units = source.plan()
    return units, [ref for unit in units for ref in source.read(unit)]


@pytest.fixture
def dataset(tmp_path):
    for scene in ("a", "b"):
        for i in range(3):
            touch_image(tmp_path / "rgb" / scene / f"{i:04d}.jpg", i)
            touch_mask(tmp_path / "seg" / scene / f"{i:04d}.png", i)
    touch_image(tmp_path / "rgb" / "b" / "0099.jpg")  # image without mask
    touch_mask(tmp_path / "seg" / "c" / "0000.png")  # mask without image
    return tmp_path


def test_pairs_match_by_relative_path_and_unmatched_files_are_items(dataset):
    source = Paired(
        "ade",
        {"images": str(dataset / "rgb"), "annotations": {"segmentation": str(dataset / "seg")}, "shard_size": 100},
    )
    _, items = refs(source)
    by_key = {r.key: r for r in items}
    assert sorted(by_key) == ["a/0000", "a/0001", "a/0002", "b/0000", "b/0001", "b/0002", "b/0099", "c/0000"]
    pair = by_key["b/0001"]
    mask = pair.parts["segmentation"]
    assert pair.parts["image"].uri.endswith("rgb/b/0001.jpg") and mask.uri.endswith("seg/b/0001.png")
    assert isinstance(mask, AnnotationPart) and mask.image.uri.endswith("rgb/b/0001.jpg")
    for key in ("b/0099", "c/0000"):
        assert by_key[key].meta[ERROR_META]["reason"] == "unpaired"
        with pytest.raises(ItemError) as err:
            decode_item(by_key[key], DecodeSettings(image_size=16))
        assert err.value.reason is Reason.UNPAIRED
    assert "no segmentation" in by_key["b/0099"].meta[ERROR_META]["detail"]
    decoded = decode_item(pair, DecodeSettings(image_size=16))
    assert [f.role for f in decoded.frames] == ["image", "segmentation"]


def test_never_by_sorted_position(tmp_path):
    """Sorted lists would pair x1<->y2 when one y is missing; key matching does not."""
    for i in (1, 2, 3):
        touch_image(tmp_path / "x" / f"{i}.jpg")
    for i in (2, 3):
        touch_mask(tmp_path / "y" / f"{i}.png", value=i)
    source = Paired(
        "p", {"images": str(tmp_path / "x"), "annotations": {"segmentation": str(tmp_path / "y")}, "shard_size": 10}
    )
    by_key = {r.key: r for r in refs(source)[1]}
    assert by_key["2"].parts["segmentation"].uri.endswith("y/2.png") and ERROR_META in by_key["1"].meta


def test_units_are_hash_buckets_covering_every_file_once(dataset):
    source = Paired(
        "ade", {"images": str(dataset / "rgb"), "annotations": {"segmentation": str(dataset / "seg")}, "shard_size": 3}
    )
    units, items = refs(source)
    assert len(units) >= 2 and all(u.id.startswith("h") for u in units)
    assert sum(u.n_items for u in units) == len(items) == 8 and len({r.key for r in items}) == 8
    assert [u.id for u in Paired("ade", dict(source.options)).plan()] == [u.id for u in units]


def test_match_pattern_and_duplicate_keys(tmp_path):
    touch_image(tmp_path / "x" / "img_001.jpg")
    touch_image(tmp_path / "x" / "img_002.jpg")
    touch_image(tmp_path / "x" / "extra" / "img_002.jpg")  # same key under the pattern
    (tmp_path / "d").mkdir()
    np.save(tmp_path / "d" / "depth_001.npy", np.ones((12, 16), np.float32))
    np.save(tmp_path / "d" / "depth_002.npy", np.ones((12, 16), np.float32))
    source = Paired(
        "nyu",
        {
            "images": str(tmp_path / "x"),
            "annotations": {"depth": str(tmp_path / "d")},
            "match": r"_(\d+)\.",
            "shard_size": 10,
        },
    )
    items = refs(source)[1]
    good = [r for r in items if ERROR_META not in r.meta]
    dupes = [r for r in items if ERROR_META in r.meta]
    assert sorted(r.key for r in good) == ["001", "002"]
    assert len(dupes) == 1 and "also the key of" in dupes[0].meta[ERROR_META]["detail"]
    assert dupes[0].key == "img_002.jpg" and dupes[0].uri == str(tmp_path / "x" / "img_002.jpg")  # its relative path


def test_items_of_their_own_are_keyed_by_relative_path_made_unique(tmp_path):
    """Unpaired and refused files are keyed by their path below their root, never their URI; when two share one
    (a broken link of the same name in both roots), the later gets the first free @N."""
    touch_image(tmp_path / "x" / "1.jpg")
    touch_mask(tmp_path / "s" / "1.png")
    for side in ("x", "s"):
        (tmp_path / side / "gone.png").symlink_to("missing.png")
    touch_mask(tmp_path / "s" / "sub" / "2.png")
    source = Paired(
        "p", {"images": str(tmp_path / "x"), "annotations": {"segmentation": str(tmp_path / "s")}, "shard_size": 10}
    )
    items = {r.key: r for r in refs(source)[1]}
    assert sorted(items) == ["1", "gone.png", "gone.png@1", "sub/2"]
    assert {items[k].meta[ERROR_META]["reason"] for k in ("gone.png", "gone.png@1")} == {"broken_link"}
    assert {items[k].uri for k in ("gone.png", "gone.png@1")} == {str(tmp_path / side / "gone.png") for side in "xs"}


def test_require_any_and_render_options(tmp_path):
    touch_image(tmp_path / "x" / "1.jpg")
    touch_image(tmp_path / "x" / "2.jpg")
    touch_mask(tmp_path / "s" / "1.png")
    (tmp_path / "d").mkdir()
    np.save(tmp_path / "d" / "2.npy", np.ones((12, 16), np.float32))
    options = {
        "images": str(tmp_path / "x"),
        "shard_size": 10,
        "require": "any",
        "annotations": {
            "segmentation": str(tmp_path / "s"),
            "depth": {"paths": str(tmp_path / "d"), "encoding": "disparity"},
        },
    }
    items = {r.key: r for r in refs(Paired("multi", options))[1]}
    assert not any(ERROR_META in r.meta for r in items.values())
    assert items["2"].parts["depth"].option("encoding") == "disparity" and "segmentation" not in items["2"].parts


def test_configuration_errors_name_the_field(tmp_path):
    with pytest.raises(SourceError, match="annotations"):
        Paired("p", {"images": str(tmp_path), "annotations": {}})
    with pytest.raises(SourceError, match="colour"):
        Paired("p", {"images": str(tmp_path), "annotations": {"colour": str(tmp_path)}})
    touch_image(tmp_path / "x" / "1.jpg")
    with pytest.raises(SourceError, match="annotations.depth"):
        Paired(
            "p", {"images": str(tmp_path / "x"), "annotations": {"depth": str(tmp_path / "nope")}, "shard_size": 5}
        ).plan()
