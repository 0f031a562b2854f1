import numpy as np
import pytest

from lvm_data.items import DecodedItem, Frame, ItemRef, Part
from lvm_data.media.image import decode_image
from lvm_data.media.resize import resize
from lvm_data.media.samples import photos
from lvm_data.sentences.base import TemplateContext
from lvm_data.sentences.derived import Derived

from .fakes import accounted


@pytest.fixture(scope="module")
def real_items():
    out = []
    for path in photos("train")[:5]:
        pixels = resize(decode_image(path.read_bytes()), 32)
        ref = ItemRef("photos", str(path), "000000", {"image": Part(str(path))})
        out.append(DecodedItem(ref, [Frame(pixels, str(path))]))
    return out


@pytest.mark.parametrize(
    "task, roles",
    [("colorization", ["gray", "image"]), ("inpainting", ["masked", "image"]), ("edges", ["image", "edges"])],
)
def test_derived_pairs_from_real_photos(real_items, task, roles):
    result = Derived({"task": task, "pairs": 2}).build(real_items)
    accounted(real_items, result)
    assert [s.n_images for s in result.sentences] == [4, 4]  # 5 photos: 2 + 2 pairs, 1 leftover
    assert len(result.outcomes) == 1
    for sentence in result.sentences:
        assert [f.role for f in sentence.frames] == roles * 2 and sentence.task == task
        first, second = sentence.frames[:2]
        assert first.uri == second.uri and not np.array_equal(first.pixels, second.pixels)


def test_colorization_input_is_gray_and_target_is_the_photo(real_items):
    sentence = Derived({"task": "colorization", "pairs": 2}).build(real_items).sentences[0]
    gray, color = sentence.frames[:2]
    original = next(i for i in real_items if i.key == sentence.item_keys[0]).frames[0].pixels
    assert np.array_equal(color.pixels, original)
    assert (gray.pixels[..., 0] == gray.pixels[..., 2]).all()


def test_inpainting_masks_depend_on_the_seed(real_items):
    a = Derived({"task": "inpainting", "pairs": 2}, TemplateContext(seed=0)).build(real_items)
    b = Derived({"task": "inpainting", "pairs": 2}, TemplateContext(seed=0)).build(real_items)
    c = Derived({"task": "inpainting", "pairs": 2}, TemplateContext(seed=5)).build(real_items)
    masked = {k: f.pixels for s in a.sentences for k, f in zip(s.item_keys, s.frames[0::2], strict=True)}
    again = {k: f.pixels for s in b.sentences for k, f in zip(s.item_keys, s.frames[0::2], strict=True)}
    other = {k: f.pixels for s in c.sentences for k, f in zip(s.item_keys, s.frames[0::2], strict=True)}
    common = sorted(set(masked) & set(other))
    assert all(np.array_equal(masked[k], again[k]) for k in masked)
    assert any(not np.array_equal(masked[k], other[k]) for k in common)


def test_unknown_task_is_an_error():
    with pytest.raises(ValueError, match="colorization"):
        Derived({"task": "super-resolution"})


def test_masks_and_ids_follow_the_item_key_not_where_its_frames_were_read(real_items):
    """Items keyed by name (as sources key them, relative to their root) read from two locations: the same
    masks and the same sentence ids; only the frames' URIs differ."""

    def read_from(prefix: str) -> list[DecodedItem]:
        names = [item.key.rsplit("/", 1)[-1] for item in real_items]
        return [
            DecodedItem(
                ItemRef("photos", name, "000000", {"image": Part(f"{prefix}/{name}")}),
                [Frame(item.frames[0].pixels, f"{prefix}/{name}")],
            )
            for name, item in zip(names, real_items, strict=True)
        ]

    template = Derived({"task": "inpainting", "pairs": 2}, TemplateContext(seed=3))
    here, there = (template.build(read_from(prefix)).sentences for prefix in ("/data/in", "gs://bucket/copy/in"))
    assert [s.id for s in here] == [s.id for s in there] and len(here) == 2
    for a, b in zip(here, there, strict=True):
        assert all(np.array_equal(f.pixels, g.pixels) for f, g in zip(a.frames, b.frames, strict=True))
        assert a.frames[0].uri.startswith("/data/in/") and b.frames[0].uri.startswith("gs://bucket/copy/in/")
