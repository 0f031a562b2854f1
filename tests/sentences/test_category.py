import pytest

from lvm_data.items import ItemRef, Part
from lvm_data.outcomes import Reason, Status
from lvm_data.sentences.category import Category, item_label

from .fakes import accounted, item


def labelled(label, n, start=0, how="folder"):
    out = []
    for i in range(start, start + n):
        key = f"{label}-{i}"
        if how == "folder":
            out.append(item(key, uri=f"/imagenet/{label}/{i}.jpg"))
        else:
            out.append(item(key, meta={"json": {"label": label}}))
    return out


def test_shots_of_one_class_and_round_robin_across_classes():
    items = labelled("cat", 8) + labelled("dog", 8) + labelled("owl", 6)
    result = Category().build(items)
    accounted(items, result)
    left = {k for k, o in result.outcomes.items() if o.reason is Reason.LEFTOVER}
    assert len(left) == 2 and all(k.startswith("owl") for k in left)
    assert all(result.outcomes[k].status is Status.FILTERED for k in left)
    shots = [(s.params["labels"], s.frames) for s in result.sentences]
    assert [s.n_images for s in result.sentences] == [16, 4]
    for labels, frames in shots:
        for i, label in enumerate(labels):
            assert {f.uri.split("/")[2] for f in frames[4 * i : 4 * i + 4]} == {label}  # a shot is one class
    first_labels = shots[0][0]
    assert len(set(first_labels[:3])) == 3  # neighbouring shots show different classes


def test_labels_from_meta_fields():
    items = labelled("7", 4, how="json")
    result = Category({"label": "json.label"}).build(items)
    assert result.sentences[0].params["labels"] == ["7"] and not result.outcomes
    ref = ItemRef("s", "k", "u", {"image": Part("/a/b.jpg")}, {"label": 3})
    assert item_label(ref, "auto") == "3" and item_label(ref, "folder") == "a" and item_label(ref, "other") is None


def test_items_without_a_label_are_bad_annotation():
    items = [item("x", meta={})] + labelled("cat", 4, how="json")
    result = Category({"label": "json.label"}).build(items)
    accounted(items, result)
    assert result.outcomes["x"].reason is Reason.BAD_ANNOTATION


def test_options_respect_the_limit():
    with pytest.raises(ValueError, match="exceed"):
        Category({"shot_size": 4, "shots": 5})
    assert Category({"shot_size": 2}).shots == 8
