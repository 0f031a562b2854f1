"""Token-space dedup after tokenization: exact duplicate sentences and MinHash near duplicates.

A source that lists `duplicate_sentences` / `near_duplicate_sentences` joins a job-wide pool. Every
sentence tokenized for a pooled source gets a `SentenceSig` (exact digest of its codes, MinHash of its
token n-grams); sentences sort by (source, first item key, sentence id), so the sentence of the item
that sorts first survives. Exact groups keep their first id; among the rest, an id
with a near duplicate (estimated Jaccard >= threshold) that sorts before it is removed
(lvm_data.curation.survivors). Removed sentences are not written; their items' ledger rows say
`duplicate_sentence` / `near_duplicate_sentence` unless another sentence of theirs is written.

Pooled sources' units are staged when tokenized (lvm_data.job.staging) and decided together in a pass
after the tokenizer (pipelines/curation.py `commit_staged`; the plain loop calls `decide`), and every
committed unit keeps its sentences' signatures (removed ones included) in OUT/curation/signatures/, so a
resumed or retried run decides over the same set of candidates: `committed=True` signatures take part
but are never removed again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from lvm_data.curation import store
from lvm_data.curation.config import CurationConfig
from lvm_data.curation.minhash import MinHashSpec, digest, near_pairs, signature
from lvm_data.curation.survivors import Id, group_exact, near_losers
from lvm_data.outcomes import Reason
from lvm_data.shards.writer import SentenceRow


@dataclass(frozen=True)
class SentenceSettings:
    """Which sources are in which pool, and the near pool's MinHash setting."""

    exact: frozenset[str]
    near: frozenset[str]
    near_duplicate_sentences: MinHashSpec | None = None

    @property
    def sources(self) -> list[str]:
        return sorted(self.exact | self.near)


def sentence_settings(curation: CurationConfig) -> SentenceSettings:
    return SentenceSettings(
        curation.members("duplicate_sentences"),
        curation.members("near_duplicate_sentences"),
        curation.pool("near_duplicate_sentences"),
    )


@dataclass(frozen=True, eq=False)
class SentenceSig:
    """A candidate sentence: its unit, exact digest and MinHash (None outside that pool)."""

    source: str
    unit: str
    sentence: str
    key: str = ""  # the first item's key: sentences sort by (source, key, sentence id)
    uri: str = ""  # the first image's location, to name a survivor to people
    digest: str | None = None
    minhash: np.ndarray | None = None
    committed: bool = False

    @property
    def id(self) -> Id:
        return (self.source, f"{self.key}\x00{self.sentence}")


@dataclass(frozen=True, order=True)
class SentenceRemoval:
    source: str
    unit: str
    sentence: str
    reason: str
    detail: str


def sign_row(settings: SentenceSettings, source: str, unit: str, row: SentenceRow) -> SentenceSig | None:
    """The signature of a tokenized sentence (a SentenceRow) of a pooled source (None for other sources)."""
    if source not in settings.exact and source not in settings.near:
        return None
    near = settings.near_duplicate_sentences
    return SentenceSig(
        source,
        unit,
        row.id,
        row.item_keys[0] if row.item_keys else "",
        row.frames[0][0] if row.frames else "",
        digest(row.tokens) if source in settings.exact else None,
        signature(row.tokens, near) if near is not None and source in settings.near else None,
    )


def exact_removal(loser: SentenceSig, survivor: SentenceSig) -> SentenceRemoval:
    return SentenceRemoval(
        loser.source,
        loser.unit,
        loser.sentence,
        Reason.DUPLICATE_SENTENCE.value,
        f"sentence {loser.sentence} has the same tokens as sentence {survivor.sentence} "
        f"({survivor.uri}, source {survivor.source}), which is kept",
    )


def near_removal(loser: SentenceSig, survivor: SentenceSig, distance: float) -> SentenceRemoval:
    return SentenceRemoval(
        loser.source,
        loser.unit,
        loser.sentence,
        Reason.NEAR_DUPLICATE_SENTENCE.value,
        f"sentence {loser.sentence}: estimated token n-gram Jaccard {1 - distance:.3f} with "
        f"sentence {survivor.sentence} ({survivor.uri}, source {survivor.source}), "
        "which sorts first",
    )


def decide(sigs: Iterable[SentenceSig], settings: SentenceSettings) -> list[SentenceRemoval]:
    """In-process: removals of not-yet-committed sentences among `sigs` (any order), sorted."""
    ordered = sorted({s.id: s for s in sigs}.values(), key=lambda s: s.id)
    where = {s.id: s for s in ordered}
    exact = group_exact((s.digest, s.id) for s in ordered if s.digest is not None)
    removals = [exact_removal(where[m.loser], where[m.survivor]) for m in exact]
    near = settings.near_duplicate_sentences
    if near is not None:
        gone = {m.loser for m in exact}
        pool = [s for s in ordered if s.minhash is not None and s.id not in gone]
        if pool:
            i, j, sim = near_pairs(np.stack([s.minhash for s in pool if s.minhash is not None]), near)  # all of pool
            matches = near_losers((pool[a].id, pool[b].id, 1.0 - float(c)) for a, b, c in zip(i, j, sim, strict=True))
            removals += [near_removal(where[m.loser], where[m.survivor], m.distance) for m in matches]
    committed = {(s.source, s.sentence) for s in ordered if s.committed}
    return sorted(r for r in removals if (r.source, r.sentence) not in committed)


def committed_files(out: str, markers: list[dict], settings: SentenceSettings) -> list[tuple[str, str, str]]:
    """(source, unit, signature file) of every committed unit of a pooled source."""
    pooled = set(settings.sources)
    return [
        (m["source"], m["unit"], store.signature_file(out, m["source"], m["unit"]))
        for m in markers
        if m["source"] in pooled
    ]


def read_committed(entry: tuple[str, str, str]) -> list[SentenceSig]:
    """The signatures a committed unit kept (they take part in decisions, never removed again)."""
    source, unit, uri = entry
    return [
        SentenceSig(source, unit, sentence, key, first, dig, sig, committed=True)
        for sentence, key, first, dig, sig in store.read_signatures(uri)
    ]
