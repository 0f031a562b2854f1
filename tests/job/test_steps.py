import io

import numpy as np
from PIL import Image

from lvm_data.items import ItemRef, Part
from lvm_data.job.plan import ReadUnit
from lvm_data.job.steps import Selection, SourceRuntime, group_key, prepare, read_items
from lvm_data.media.contract import DecodeSettings
from lvm_data.outcomes import Outcome, Reason
from lvm_data.sentences.base import BuildResult, Sentence, Template
from lvm_data.sentences.single import Single
from lvm_data.sources.base import Source, Unit

SETTINGS = DecodeSettings(image_size=8)


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (10, 6), "green").save(buffer, "PNG")
    return buffer.getvalue()


class Inline(Source):
    format = "inline"

    def plan(self):
        return [Unit(self.name, "u0", ("a", "b", "c"), 3)]

    def read(self, unit):
        for key in unit.spec:
            if key == "boom":
                raise OSError("disk on fire")
            yield ItemRef(self.name, key, unit.id, {"image": Part(f"mem://{key}", png())})


class Greedy(Template):
    """Groups everything and forgets its last item: the pipeline must notice."""

    name = "greedy"

    def group_key(self, ref):
        return "all"

    def build(self, items):
        first = items[0]
        return BuildResult(
            [Sentence(first.ref.source, self.name, "t", first.frames, [first.key], "wrong-unit")],
            {items[1].key: Outcome.filtered(Reason.LEFTOVER)} if len(items) > 2 else {},
        )


def runtime(template=None, grouped=False, n_buckets=0):
    return SourceRuntime("s", Inline("s", {}), template or Single(), grouped, n_buckets)


def test_read_items_limits_and_selects():
    unit = Inline("s", {}).plan()[0]
    refs = list(read_items(runtime(), ReadUnit("s", unit, 2), Selection(frozenset({"u0"}))))
    assert [r.key for r in refs] == ["a", "b"]
    retry = Selection(frozenset({"u0"}), {"u0": (frozenset({"b"}), frozenset({"a", "b"}))})
    assert [r.key for r in read_items(runtime(), ReadUnit("s", unit), retry)] == ["b", "c"]
    assert list(read_items(runtime(), ReadUnit("s", unit), Selection(frozenset()))) == []


def test_grouped_items_get_their_bucket_as_unit():
    unit = Inline("s", {}).plan()[0]
    rt = runtime(Greedy(), grouped=True, n_buckets=3)
    refs = list(read_items(rt, ReadUnit("s", unit), Selection(frozenset({"g000000", "g000001", "g000002"}))))
    assert len({r.unit for r in refs}) == 1 and refs[0].unit.startswith("g")
    assert group_key(rt, refs[0]) == "all" and group_key(runtime(), refs[0]).endswith(refs[0].key)


def test_an_unreadable_unit_is_one_failed_ref():
    unit = Unit("s", "u9", ("a", "boom"), 2)
    refs = list(read_items(runtime(), ReadUnit("s", unit), Selection(frozenset({"u9"}))))
    assert [r.key for r in refs] == ["a", "u9#unreadable"]
    assert refs[1].meta["error"]["reason"] == "read_error" and "disk on fire" in refs[1].meta["error"]["detail"]


def test_prepare_turns_decode_failures_into_events_and_builds_the_rest():
    good = ItemRef("s", "good", "u0", {"image": Part("g.png", png())})
    bad = ItemRef("s", "bad", "u0", {"image": Part("b.png", b"")})
    pendings, events = prepare(runtime(), SETTINGS, [good, bad])
    assert [(e.key, e.outcome.reason) for e in events] == [("bad", Reason.EMPTY_FILE)]
    (p,) = pendings
    assert p.item_uris == {"good": "g.png"} and p.pixels().shape == (1, 8, 8, 3)


def test_prepare_holds_templates_to_their_contract():
    refs = [ItemRef("s", k, "g000001", {"image": Part(f"{k}.png", png())}) for k in "cba"]
    pendings, events = prepare(runtime(Greedy(), grouped=True), SETTINGS, refs)
    assert pendings[0].sentence.item_keys == ["a"] and pendings[0].sentence.unit == "g000001"
    assert {e.key: e.outcome.reason for e in events} == {"b": Reason.LEFTOVER, "c": Reason.INTERNAL_ERROR}


def test_a_template_that_raises_fails_its_group_visibly():
    class Broken(Single):
        def build(self, items):
            raise KeyError("oops")

    pendings, events = prepare(runtime(Broken()), SETTINGS, [ItemRef("s", "a", "u", {"image": Part("a", png())})])
    assert pendings == [] and events[0].outcome.reason is Reason.INTERNAL_ERROR
    assert "KeyError" in events[0].outcome.detail and np.isscalar(len(events))
