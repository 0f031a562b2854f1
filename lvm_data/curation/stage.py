"""The per-source filter stage between decode and tokenize.

Contract (lvm_data.job.steps.prepare calls it for every item):
- `marker(read_unit)` -> a function that puts the dedup index's decision about an item on its ref
  (`meta[CURATION_META]`); items of that read unit picked as report samples are flagged for decoding.
- `before_decode(ref) -> Early | None`: the index's decision, a blocklisted key/URI/URL, or blocklisted
  file bytes. Such an item is not decoded (unless it is a report sample); it is never written.
- `after_decode(item) -> Screened`: the item filters in the order the job file lists them; the first
  that removes an item gives its reason. Clip filters may remove or split some clips and keep the item.

Every removal is an `ItemEvent` with status filtered, the filter's reason code and a detail naming the
measured value (or the survivor); post-decode removals carry a thumbnail for the report, blocklisted
items never do. Filters do not raise on bad data; an exception is a bug that the item boundary records
as `internal_error`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from lvm_data.curation import store
from lvm_data.curation.blocklist import Blocklist, BlocklistSpec, load_blocklist
from lvm_data.curation.config import Bounds, LowVariance, SceneCuts, SourceFilters, StaticClips
from lvm_data.curation.images import check_bounds, check_variance
from lvm_data.curation.removed_samples import sampled_keys, thumbnail
from lvm_data.curation.video import filter_clips
from lvm_data.items import DecodedItem, ItemRef
from lvm_data.media.contract import read_part
from lvm_data.outcomes import ItemError, Outcome, Reason
from lvm_data.shards.ledger import ItemEvent

CURATION_META = "curation"  # ItemRef.meta key holding the index's decision: reason, detail, sample


@dataclass(frozen=True)
class Early:
    """A removal decided before decoding; `sample`: decode anyway, for a thumbnail in the report."""

    outcome: Outcome
    sample: bool = False


@dataclass
class Screened:
    item: DecodedItem | None
    events: list[ItemEvent] = field(default_factory=list)


class Stage:
    """A source's filters, built once per worker (blocklist files are read here)."""

    def __init__(self, source: str, filters: SourceFilters, decisions: Callable[[str], dict] | None = None):
        self.source, self.filters, self.decisions = source, filters, decisions
        spec = filters.get("blocklist")
        self.blocklist: Blocklist | None = load_blocklist(spec) if spec is not None else None

    @classmethod
    def for_source(cls, out: str, source: str, filters: SourceFilters, *, index: bool = True) -> Stage | None:
        """The stage of a source (None without filters); `index`: look up the dedup index's removals in `out`."""
        if not filters.any:
            return None
        lookup = (lambda unit: store.read_removals(out, source, unit)) if index and filters.indexed else None
        return cls(source, filters, lookup)

    def marker(self, read_unit: str) -> Callable[[ItemRef], ItemRef]:
        decided = self.decisions(read_unit) if self.decisions else {}
        if not decided:
            return lambda ref: ref
        sampled = sampled_keys(decided, self.source)

        def mark(ref: ItemRef) -> ItemRef:
            if ref.key not in decided:
                return ref
            reason, detail = decided[ref.key]
            note = {"reason": reason, "detail": detail, "sample": ref.key in sampled}
            return replace(ref, meta={**ref.meta, CURATION_META: note})

        return mark

    def before_decode(self, ref: ItemRef) -> Early | None:
        note = ref.meta.get(CURATION_META)
        if note:
            return Early(Outcome.filtered(Reason(note["reason"]), note["detail"]), bool(note["sample"]))
        if self.blocklist is None:
            return None
        detail = self.blocklist.match_names(ref)
        if detail is None and self.blocklist.needs_bytes and ref.parts:
            data = _main_bytes(ref)
            detail = self.blocklist.match_bytes(data) if data else None
        return Early(Outcome.filtered(Reason.BLOCKLISTED, f"{ref.uri}: {detail}")) if detail else None

    def after_decode(self, item: DecodedItem) -> Screened:
        events, clips_done = [], False
        for spec in self.filters.items:
            if isinstance(spec, StaticClips | SceneCuts):
                if not clips_done:  # both clip filters run together, where the first of them is listed
                    clips_done = True
                    result = filter_clips(item, self.filters.get("static_clips"), self.filters.get("scene_cuts"))
                    events += [_event(item, outcome, thumbnail(first)) for outcome, first in result.removed]
                    if result.item is None:
                        return Screened(None, events)
                    item = result.item
                continue
            outcome = self._check(spec, item)
            if outcome is not None:
                sample = None if outcome.reason is Reason.BLOCKLISTED else thumbnail(item.frames[0].pixels)
                return Screened(None, events + [_event(item, outcome, sample)])
        return Screened(item, events)

    def _check(self, spec, item: DecodedItem) -> Outcome | None:
        if isinstance(spec, Bounds):
            return check_bounds(item, spec)
        if isinstance(spec, LowVariance):
            return check_variance(item, spec)
        if isinstance(spec, BlocklistSpec) and item.frames:
            assert self.blocklist is not None  # loaded in __init__ from this same spec
            detail = self.blocklist.match_pixels(item.frames[0].pixels)
            return Outcome.filtered(Reason.BLOCKLISTED, f"{item.ref.uri}: {detail}") if detail else None
        return None


def _event(item: DecodedItem, outcome: Outcome, sample: bytes | None) -> ItemEvent:
    return ItemEvent(item.key, item.ref.uri, outcome, sample=sample)


def _main_bytes(ref: ItemRef) -> bytes | None:
    """The bytes of the item's first part, or None when they cannot be read (decoding will say why)."""
    try:
        return read_part(next(iter(ref.parts.values())))
    except ItemError:
        return None
