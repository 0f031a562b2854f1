import pytest

from lvm_data.items import ERROR_META, ItemRef, Part
from lvm_data.outcomes import Reason, Status
from lvm_data.sentences.base import TemplateContext
from lvm_data.sentences.pairs import Pairs

from .fakes import accounted, item


def depth_items(n, unit="g000001"):
    return [item(f"k{i:03d}", roles=("image", "depth"), unit=unit) for i in range(n)]


def test_k_pairs_per_sentence_in_x_y_order():
    items = depth_items(16)
    result = Pairs().build(items)
    accounted(items, result)
    assert [s.n_images for s in result.sentences] == [16, 16]
    for sentence in result.sentences:
        assert [f.role for f in sentence.frames] == ["image", "depth"] * 8
        assert sentence.task == "depth" and sentence.unit == "g000001"
        for x, y, key in zip(sentence.frames[0::2], sentence.frames[1::2], sentence.item_keys, strict=True):
            assert x.uri == f"/data/{key}.png" and y.uri == f"/data/depth/{key}.png"  # a pair never mixes items


def test_grouping_is_a_seeded_shuffle():
    items = depth_items(24)
    a = Pairs(context=TemplateContext(seed=1)).build(items)
    again = Pairs(context=TemplateContext(seed=1)).build(list(reversed(items)))
    other = Pairs(context=TemplateContext(seed=2)).build(items)
    keys = [s.item_keys for s in a.sentences]
    assert keys == [s.item_keys for s in again.sentences]  # input order does not matter
    assert keys != [s.item_keys for s in other.sentences]
    assert keys[0] != sorted(keys[0]) or keys[1] != sorted(keys[1])


def test_leftover_rule():
    items = depth_items(8 + 8 + 3)
    result = Pairs().build(items)
    accounted(items, result)
    assert [s.n_images for s in result.sentences] == [16, 16, 6]  # 3 pairs >= min_pairs 2: a shorter sentence
    items = depth_items(17)
    result = Pairs().build(items)
    accounted(items, result)
    left = [k for k, o in result.outcomes.items() if o.reason is Reason.LEFTOVER]
    assert len(left) == 1 and result.outcomes[left[0]].status is Status.FILTERED


def test_items_without_both_sides_are_unpaired():
    items = depth_items(4) + [item("lonely", roles=("image",)), item("orphan", roles=("depth",))]
    result = Pairs().build(items)
    accounted(items, result)
    assert result.outcomes["lonely"].reason is Reason.UNPAIRED and "has image" in result.outcomes["lonely"].detail
    assert result.outcomes["orphan"].reason is Reason.UNPAIRED


def test_several_annotations_need_the_annotation_option():
    items = [item(f"m{i}", roles=("image", "depth", "normals")) for i in range(4)]
    ambiguous = Pairs().build(items)
    assert all(o.reason is Reason.UNPAIRED and "annotation" in o.detail for o in ambiguous.outcomes.values())
    chosen = Pairs({"annotation": "normals", "pairs": 2}).build(items)
    accounted(items, chosen)
    assert [s.task for s in chosen.sentences] == ["normals", "normals"]
    assert all(f.role in ("image", "normals") for s in chosen.sentences for f in s.frames)


def test_group_key_is_task_and_unit():
    ref = ItemRef("s", "k", "h000003", {"image": Part("a.jpg"), "segmentation": Part("a.png")})
    assert Pairs().group_key(ref) == "segmentation/h000003"
    assert Pairs({"task": "ade20k"}).group_key(ref) == "ade20k/h000003"
    failed = ItemRef("s", "k", "h000003", {}, {ERROR_META: {"reason": "unpaired", "detail": "x", "uri": ""}})
    assert Pairs().group_key(failed) == "unpaired/h000003"


def test_options_are_checked_against_the_length_limit():
    with pytest.raises(ValueError, match="at most 16"):
        Pairs({"pairs": 9})
    assert Pairs({"pairs": 4}, TemplateContext(max_images=8)).pairs == 4
    with pytest.raises(ValueError, match="min_pairs"):
        Pairs({"pairs": 2, "min_pairs": 3})
