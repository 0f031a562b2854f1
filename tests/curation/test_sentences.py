import dataclasses

import numpy as np

from lvm_data.curation.config import parse_filters
from lvm_data.curation.sentence_dedup import SentenceSettings, SentenceSig, decide, sign_row
from lvm_data.shards.writer import SentenceRow

SETTINGS = SentenceSettings(
    frozenset({"a", "b"}),
    frozenset({"a", "b"}),
    parse_filters([{"near_duplicate_sentences": {"threshold": 0.7}}]).get("near_duplicate_sentences"),
)


def row(sid: str, tokens: np.ndarray) -> SentenceRow:
    return SentenceRow(sid, "a", "single", "image", 1, tokens, [(f"/img/{sid}.png", 0, "image")], [sid])


def tokens(seed: int, edits: int = 0, base: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed if base is None else base)
    out = rng.integers(0, 8192, 256).astype(np.uint16)
    if edits:
        changed = np.random.default_rng(seed)
        out[changed.choice(256, edits, replace=False)] = changed.integers(0, 8192, edits)
    return out


def signed(source: str, sid: str, toks: np.ndarray, committed: bool = False) -> SentenceSig:
    s = sign_row(SETTINGS, source, "u0", row(sid, toks))
    return dataclasses.replace(s, committed=committed)


def test_exact_and_near_sentences_across_sources():
    sigs = [
        signed("a", "s1", tokens(1)),
        signed("b", "s0", tokens(1)),  # same tokens: a/s1 sorts first
        signed("a", "s2", tokens(2)),
        signed("a", "s3", tokens(9, edits=4, base=2)),
        signed("a", "s4", tokens(4)),
    ]
    removals = {r.sentence: r for r in decide(sigs, SETTINGS)}
    assert set(removals) == {"s0", "s3"}
    assert removals["s0"].reason == "duplicate_sentence" and removals["s0"].source == "b"
    assert "same tokens as sentence s1 (/img/s1.png, source a)" in removals["s0"].detail
    assert removals["s3"].reason == "near_duplicate_sentence" and "with sentence s2" in removals["s3"].detail


def test_committed_sentences_count_but_are_never_removed_again():
    committed = signed("a", "s9", tokens(1), committed=True)
    fresh = signed("a", "s1", tokens(1))
    assert decide([committed, fresh], SETTINGS) == []  # s9 sorts after s1 but is already written
    late = signed("a", "t1", tokens(1))
    assert [r.sentence for r in decide([committed, late], SETTINGS)] == ["t1"]


def test_only_pooled_sources_are_signed():
    assert sign_row(SETTINGS, "c", "u0", row("x", tokens(1))) is None
    exact_only = SentenceSettings(frozenset({"a"}), frozenset(), None)
    sig = sign_row(exact_only, "a", "u0", row("x", tokens(1)))
    assert sig.digest is not None and sig.minhash is None
