"""What curation adds to a unit's commit; `lvm_data.job.steps.finish_unit` calls `apply` before the ledger.

- Sentences removed in token space are dropped, and their items' ok events become filtered events with
  the removal's reason (an item stays ok when another sentence of it is written).
- Pooled sources write the unit's candidate sentence signatures (removed ones too) for later runs.
- Up to `samples.PER_UNIT` removals per reason are written as report samples (thumbnails, or the codes
  of a removed sentence's first image); blocklisted items never are.
- `counts` = {"removed": {reason: n}} for the unit marker: one per removed item, clip or sentence (a
  video item that loses one static clip still ends ok in the ledger; the clip is counted here).
All files are written before the unit's marker.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from lvm_data.curation import store
from lvm_data.curation.removed_samples import choose, rank
from lvm_data.curation.sentence_dedup import SentenceRemoval, SentenceSig
from lvm_data.outcomes import ITEM_FILTER_REASONS, Outcome, Reason, Status
from lvm_data.shards.ledger import ItemEvent
from lvm_data.shards.writer import SentenceRow, UnitCommit

ITEM_REASONS = frozenset(r.value for r in ITEM_FILTER_REASONS)


@dataclass
class UnitCuration:
    """A unit's curation inputs: sentences to remove, this run's candidate signatures, whether pooled."""

    removed: list[SentenceRemoval] = field(default_factory=list)
    signatures: list[SentenceSig] = field(default_factory=list)
    pooled: bool = False


@dataclass
class Curated:
    rows: list[SentenceRow]
    events: list[ItemEvent]
    counts: dict


def apply(
    commit: UnitCommit, events: list[ItemEvent], rows: list[SentenceRow], curation: UnitCuration, merge: bool = False
) -> Curated:
    """Rows and events after token-space removals, with the files above written; see the module docstring."""
    out, source, unit = commit.out, commit.source, commit.unit
    removed = {r.sentence: r for r in curation.removed}
    gone = {r.id: r for r in rows if r.id in removed}
    kept = [r for r in rows if r.id not in removed]
    events = [_refiled(e, removed) for e in events]
    counts = Counter(
        e.outcome.reason.value
        for e in events
        if e.outcome.status is Status.FILTERED and e.outcome.reason.value in ITEM_REASONS
    )
    counts.update(removed[sid].reason for sid in gone)
    if curation.pooled:
        _write_signatures(out, source, unit, curation.signatures, merge)
    samples = _item_samples(source, unit, events) + _sentence_samples(source, unit, gone.values(), removed)
    if merge:
        samples += store.read_samples(store.sample_file(out, source, unit))
    store.write_samples(out, source, unit, choose(_unique(samples)))
    return Curated(kept, events, {"removed": dict(sorted(counts.items()))})


def _refiled(event: ItemEvent, removed: dict[str, SentenceRemoval]) -> ItemEvent:
    """An ok event for a removed sentence becomes the removal's filtered event."""
    if not (event.outcome.is_ok and event.sentence_id in removed):
        return event
    r = removed[event.sentence_id]
    return ItemEvent(event.key, event.uri, Outcome.filtered(Reason(r.reason), r.detail))


def _write_signatures(out: str, source: str, unit: str, sigs: list[SentenceSig], merge: bool) -> None:
    rows = {s.sentence: (s.sentence, s.key, s.uri, s.digest, s.minhash) for s in sigs}
    if merge:
        for row in store.read_signatures(store.signature_file(out, source, unit)):
            rows.setdefault(row[0], row)
    store.write_signatures(out, source, unit, [rows[k] for k in sorted(rows)])


def _item_samples(source: str, unit: str, events: list[ItemEvent]) -> list[dict]:
    return [
        {
            "source": source,
            "unit": unit,
            "key": e.key,
            "uri": e.uri,
            "reason": e.outcome.reason.value,
            "detail": e.outcome.detail,
            "rank": rank(source, e.key, e.outcome.detail),
            "image": e.sample,
            "tokens": [],
        }
        for e in events
        if e.sample is not None and e.outcome.reason is not Reason.BLOCKLISTED
    ]


def _sentence_samples(source: str, unit: str, rows, removed: dict[str, SentenceRemoval]) -> list[dict]:
    out = []
    for row in rows:
        per_image = len(row.tokens) // max(row.n_images, 1)
        r = removed[row.id]
        out.append(
            {
                "source": source,
                "unit": unit,
                "key": row.item_keys[0] if row.item_keys else row.id,
                "uri": row.frames[0][0] if row.frames else "",
                "reason": r.reason,
                "detail": r.detail,
                "rank": rank(source, row.id, r.detail),
                "image": None,
                "tokens": np.asarray(row.tokens[:per_image], np.uint16).tolist(),
            }
        )
    return out


def _unique(samples: list[dict]) -> list[dict]:
    return list({(s["reason"], s["key"], s["detail"]): s for s in samples}.values())


def merged_counts(old: dict | None, new: dict) -> dict:
    """A retried unit's curation counts: the earlier run's plus this run's."""
    total = Counter((old or {}).get("removed", {}))
    total.update(new.get("removed", {}))
    return {"removed": dict(sorted(total.items()))}
