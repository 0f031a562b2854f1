import numpy as np

from lvm_data.curation import store
from lvm_data.curation.removed_samples import thumbnail
from lvm_data.curation.sentence_dedup import SentenceRemoval, SentenceSig
from lvm_data.curation.units import UnitCuration, apply, merged_counts
from lvm_data.outcomes import Outcome, Reason
from lvm_data.shards.ledger import ItemEvent, resolve_unit
from lvm_data.shards.writer import SentenceRow, ShardInfo, UnitCommit


def row(sid: str, key: str, n_images: int = 2) -> SentenceRow:
    tokens = np.arange(n_images * 4, dtype=np.uint16) + len(sid)
    frames = [(f"/v/{key}", i, "video") for i in range(n_images)]
    return SentenceRow(sid, "s", "video", "video", n_images, tokens, frames, [key])


def commit(out: str) -> UnitCommit:
    return UnitCommit(out, "s", "u", "digest", ShardInfo("fp", 256, 4, "hash"))


def test_removed_sentences_refile_their_items_and_everything_is_counted(tmp_path):
    out = str(tmp_path)
    rows = [row("s1", "a"), row("s2", "b"), row("s3", "b")]
    events = [
        ItemEvent("a", "/v/a", Outcome.ok(), "s1"),
        ItemEvent("b", "/v/b", Outcome.ok(), "s2"),
        ItemEvent("b", "/v/b", Outcome.ok(), "s3"),
        ItemEvent(
            "b",
            "/v/b",
            Outcome.filtered(Reason.STATIC_CLIP, "clip at 40"),
            sample=thumbnail(np.zeros((8, 8, 3), np.uint8)),
        ),
        ItemEvent("c", "/v/c", Outcome.filtered(Reason.BLOCKLISTED, "listed")),
        ItemEvent("d", "/v/d", Outcome.failed(Reason.DECODE_ERROR, "broken")),
    ]
    removed = [
        SentenceRemoval("s", "u", "s1", "duplicate_sentence", "same as s9"),
        SentenceRemoval("s", "u", "s2", "near_duplicate_sentence", "close to s9"),
    ]
    sigs = [SentenceSig("s", "u", sid, key=sid, uri=f"/v/{sid}", digest=f"d{sid}") for sid in ("s1", "s2", "s3")]
    curated = apply(commit(out), events, rows, UnitCuration(removed, sigs, pooled=True))
    assert [r.id for r in curated.rows] == ["s3"]
    assert curated.counts == {
        "removed": {"blocklisted": 1, "duplicate_sentence": 1, "near_duplicate_sentence": 1, "static_clip": 1}
    }
    ledger = {r.key: (r.status, r.reason) for r in resolve_unit("s", "u", ["a", "b", "c", "d"], curated.events)}
    assert ledger == {
        "a": ("filtered", "duplicate_sentence"),
        "b": ("ok", "ok"),
        "c": ("filtered", "blocklisted"),
        "d": ("failed", "decode_error"),
    }
    assert [s[0] for s in store.read_signatures(store.signature_file(out, "s", "u"))] == ["s1", "s2", "s3"]
    samples = store.read_samples(store.sample_file(out, "s", "u"))
    assert sorted(s["reason"] for s in samples) == ["duplicate_sentence", "near_duplicate_sentence", "static_clip"]
    tokens = {s["reason"]: s["tokens"] for s in samples}
    assert tokens["duplicate_sentence"] == rows[0].tokens[:4].tolist()  # the first image's codes


def test_a_unit_without_removals_writes_no_samples_and_merging_keeps_earlier_files(tmp_path):
    out = str(tmp_path)
    first = [SentenceSig("s", "u", "s1", key="a", uri="/v/1", digest="d1")]
    apply(
        commit(out), [ItemEvent("a", "/a", Outcome.ok(), "s1")], [row("s1", "a")], UnitCuration([], first, pooled=True)
    )
    assert not store.sample_files(out)
    later = [SentenceSig("s", "u", "s2", key="b", uri="/v/2", digest="d2")]
    apply(commit(out), [], [row("s2", "b")], UnitCuration([], later, pooled=True), merge=True)
    assert [s[0] for s in store.read_signatures(store.signature_file(out, "s", "u"))] == ["s1", "s2"]
    assert merged_counts({"removed": {"scene_cut": 2}}, {"removed": {"scene_cut": 1, "too_small": 1}}) == {
        "removed": {"scene_cut": 3, "too_small": 1}
    }
