import numpy as np
import pytest
from PIL import Image

from lvm_data.items import ERROR_META
from lvm_data.media.contract import DecodeSettings
from lvm_data.media.decode import decode_item
from lvm_data.sources.listing import SourceError
from lvm_data.sources.sequences import MultiViews, Sequences


def image(path, value=0, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (6, 8, 3) if mode == "RGB" else (6, 8)
    Image.fromarray(np.full(shape, value, np.uint8), mode=mode).save(path)


def test_sequences_find_their_annotation_folders(tmp_path):
    for seq in ("bear", "car"):
        for i in range(4):
            image(tmp_path / "JPEGImages" / seq / f"{i:05d}.jpg", i)
            if seq == "bear":
                image(tmp_path / "Annotations" / seq / f"{i:05d}.png", 1, mode="L")
    source = Sequences(
        "davis",
        {
            "frames": str(tmp_path / "JPEGImages"),
            "shard_size": 10,
            "annotations": {"segmentation": str(tmp_path / "Annotations")},
            "clip": {"frames": 4, "stride": 1},
        },
    )
    refs = {r.key.rsplit("/", 1)[-1]: r for u in source.plan() for r in source.read(u)}
    assert ERROR_META not in refs["bear"].meta and refs["car"].meta[ERROR_META]["reason"] == "unpaired"
    item = decode_item(refs["bear"], DecodeSettings(image_size=8))
    assert [f.role for f in item.frames] == ["image", "segmentation"] * 4
    assert item.info["sequence"]["clips"] == [{"stride": 1, "start": 0, "length": 4}]


def test_sequences_need_known_kinds():
    with pytest.raises(SourceError, match="annotation kinds"):
        Sequences("s", {"frames": "x", "annotations": {"masks": "y"}})


def test_multiview_folders_in_natural_order(tmp_path):
    for i in (10, 2, 1):
        image(tmp_path / "chair" / f"view{i}.png")
    image(tmp_path / "table" / "view0.png")
    source = MultiViews("objaverse", {"paths": str(tmp_path), "shard_size": 10})
    refs = {r.key.rsplit("/", 1)[-1]: r for u in source.plan() for r in source.read(u)}
    views = refs["chair"].parts["views"].views
    assert [v.rsplit("/", 1)[-1] for v in views] == ["view1.png", "view2.png", "view10.png"]


def test_multiview_pattern_groups_by_object_and_orders_by_view(tmp_path):
    for name in ("mug_v3.png", "mug_v1.png", "mug_v12.png", "cup_v0.png", "readme.png"):
        image(tmp_path / name)
    source = MultiViews(
        "co3d", {"paths": str(tmp_path), "shard_size": 10, "pattern": r"(?P<object>[a-z]+)_v(?P<view>\d+)\.png"}
    )
    refs = {r.key: r for u in source.plan() for r in source.read(u)}
    assert [v.rsplit("/", 1)[-1] for v in refs["mug"].parts["views"].views] == [
        "mug_v1.png",
        "mug_v3.png",
        "mug_v12.png",
    ]
    stray = [r for r in refs.values() if ERROR_META in r.meta]
    assert len(stray) == 1 and stray[0].parts["views"].uri.endswith("readme.png")
    with pytest.raises(SourceError, match="named groups"):
        MultiViews("bad", {"paths": str(tmp_path), "shard_size": 1, "pattern": r"(\w+)"}).plan()
