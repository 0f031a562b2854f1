import hashlib

import numpy as np

from lvm_data.curation.config import parse_filters
from lvm_data.curation.hashes import phash
from lvm_data.curation.removed_samples import PER_UNIT, decode_jpeg
from lvm_data.curation.stage import CURATION_META, Stage
from lvm_data.items import ItemRef, Part
from lvm_data.media.samples import photos
from lvm_data.outcomes import Reason

from .media import clip_video, image_item, pan


def stage(filters, decisions=None) -> Stage:
    return Stage("src", parse_filters(filters), decisions)


def test_no_filters_no_stage():
    assert Stage.for_source("out", "src", parse_filters([])) is None
    assert Stage.for_source("out", "src", parse_filters(["bounds"])).decisions is None


def test_item_filters_run_in_the_listed_order_and_removals_carry_thumbnails():
    tiny_blank = image_item("tb", np.full((40, 40, 3), 9, np.uint8))
    first = stage(["bounds", "low_variance"]).after_decode(tiny_blank)
    assert first.item is None and [e.outcome.reason for e in first.events] == [Reason.TOO_SMALL]
    other = stage(["low_variance", "bounds"]).after_decode(tiny_blank).events
    assert [e.outcome.reason for e in other] == [Reason.LOW_VARIANCE]
    assert decode_jpeg(other[0].sample).shape == (96, 96, 3)


def test_a_kept_item_passes_unchanged(pictures):
    item = image_item("cat", pictures["chelsea"])
    screened = stage(["bounds", "low_variance", "static_clips"]).after_decode(item)
    assert screened.item is item and screened.events == []


def test_blocklisted_content_is_never_sampled(pictures):
    item = image_item("cat", pictures["chelsea"])
    listed = f"phash:{phash(item.frames[0].pixels):016x}"
    screened = stage([{"blocklist": {"hashes": [listed]}}]).after_decode(item)
    (event,) = screened.events
    assert event.outcome.reason is Reason.BLOCKLISTED and event.sample is None


def test_before_decode_applies_the_index_decision_and_blocklists():
    data = photos("heldout")[0].read_bytes()
    blocking = stage([{"blocklist": {"patterns": ["*/private/*"], "hashes": [f"md5:{hashlib.md5(data).hexdigest()}"]}}])
    named = ItemRef("src", "/d/private/a.png", "u", {"image": Part("/d/private/a.png")})
    assert blocking.before_decode(named).outcome.reason is Reason.BLOCKLISTED
    inline = ItemRef("src", "t.tar#1", "u", {"image": Part("t.tar#1.png", data)})
    early = blocking.before_decode(inline)
    assert early.outcome.reason is Reason.BLOCKLISTED and "file md5" in early.outcome.detail and not early.sample
    assert blocking.before_decode(ItemRef("src", "b", "u", {"image": Part("b.png", b"other")})) is None
    note = {"reason": "near_duplicate", "detail": "phash distance 2 from x", "sample": True}
    decided = stage(["near_duplicates"]).before_decode(ItemRef("src", "k", "u", {}, {CURATION_META: note}))
    assert decided.outcome.reason is Reason.NEAR_DUPLICATE and decided.sample


def test_marker_flags_a_few_samples_per_reason_and_never_blocklisted_ones():
    decisions = {f"k{i}": ("duplicate", f"same as {i}") for i in range(10)}
    decisions["bad"] = ("blocklisted", "listed")
    mark = stage(["duplicates"], lambda unit: decisions if unit == "u1" else {}).marker("u1")
    refs = [mark(ItemRef("src", key, "u1", {})) for key in [*decisions, "kept"]]
    notes = {r.key: r.meta.get(CURATION_META) for r in refs}
    assert notes["kept"] is None and notes["k3"]["reason"] == "duplicate"
    assert sum(n["sample"] for n in notes.values() if n) == PER_UNIT and not notes["bad"]["sample"]


def test_clip_filters_inside_the_stage(pictures):
    cat = pictures["chelsea"]
    item = clip_video("v", [[cat[:96, :96]] * 4, pan(cat, 4)])
    screened = stage(["scene_cuts", "static_clips"]).after_decode(item)
    assert [e.outcome.reason for e in screened.events] == [Reason.STATIC_CLIP]
    assert screened.item.info["video"]["clips"] == [{"stride": 4, "start": 16, "length": 4}]
    assert decode_jpeg(screened.events[0].sample).shape == (96, 96, 3)
