from lvm_data.outcomes import Reason
from lvm_data.sentences.base import TemplateContext
from lvm_data.sentences.multi_annotation import MultiAnnotation

from .fakes import accounted, item

KINDS = ("image", "depth", "normals", "segmentation")


def test_lvm_order_one_slot_order_shared_by_every_shot_of_a_sentence():
    """LVM's tokenize_multi_datasets_muse.py permutes all slots (the image too) once per sentence."""
    items = [item(f"k{i}", roles=KINDS) for i in range(24)]
    result = MultiAnnotation().build(items)
    accounted(items, result)
    orders = []
    for sentence in result.sentences:
        shots = [tuple(f.role for f in sentence.frames[i : i + 4]) for i in range(0, sentence.n_images, 4)]
        assert len(set(shots)) == 1 and sorted(shots[0]) == sorted(KINDS)  # every shot in the same order
        assert list(shots[0]) == sentence.params["slots"]
        orders.append(shots[0])
    assert len(set(orders)) > 1 and any(order[0] != "image" for order in orders)  # the image moves too
    again = MultiAnnotation().build(items)
    assert [s.id for s in again.sentences] == [s.id for s in result.sentences]  # seeded: the same every time
    mixed = [item("a", roles=KINDS), item("b", roles=("image", "depth"))]
    (sentence,) = MultiAnnotation().build(mixed).sentences
    slots, roles, start = sentence.params["slots"], [f.role for f in sentence.frames], 0
    for length in sentence.params["shots"]:  # a shot lacking a slot skips it; the order holds for the rest
        shot, start = roles[start : start + length], start + length
        assert shot == [r for r in slots if r in shot]


def test_shots_are_image_then_annotations_and_never_split():
    items = [item(f"k{i}", roles=KINDS) for i in range(9)]
    result = MultiAnnotation({"order": "seeded"}).build(items)
    accounted(items, result)
    assert [s.n_images for s in result.sentences] == [16, 16, 4]  # 4 shots of 4 images per sentence
    for sentence in result.sentences:
        for start in range(0, sentence.n_images, 4):
            shot = sentence.frames[start : start + 4]
            assert shot[0].role == "image" and sorted(f.role for f in shot[1:]) == ["depth", "normals", "segmentation"]


def test_annotation_order_is_seeded_per_item():
    items = [item(f"k{i}", roles=KINDS) for i in range(12)]
    orders = {tuple(f.role for f in s.frames[1:4]) for s in MultiAnnotation({"order": "seeded"}).build(items).sentences}
    fixed = MultiAnnotation({"order": "fixed"}).build(items)
    assert len(orders) > 1
    assert {tuple(f.role for f in s.frames[1:4]) for s in fixed.sentences} == {("depth", "normals", "segmentation")}


def test_shots_of_different_lengths_pack_up_to_the_limit():
    items = [
        item("a", roles=KINDS),
        item("b", roles=("image", "depth")),
        item("c", roles=KINDS),
        item("d", roles=("image", "depth", "normals")),
    ]
    result = MultiAnnotation({"order": "fixed"}, TemplateContext(max_images=6)).build(items)
    accounted(items, result)
    assert all(s.n_images <= 6 for s in result.sentences)
    assert sum(s.n_images for s in result.sentences) == 4 + 2 + 4 + 3


def test_missing_annotations_are_unpaired_and_long_shots_are_cut():
    items = [item("bare", roles=("image",)), item("full", roles=KINDS)]
    result = MultiAnnotation({"order": "fixed"}, TemplateContext(max_images=3)).build(items)
    accounted(items, result)
    assert result.outcomes["bare"].reason is Reason.UNPAIRED
    assert [f.role for f in result.sentences[0].frames] == ["image", "depth", "normals"]
    chosen = MultiAnnotation({"annotations": ["segmentation"], "order": "fixed"}).build([item("x", roles=KINDS)])
    assert [f.role for f in chosen.sentences[0].frames] == ["image", "segmentation"]
