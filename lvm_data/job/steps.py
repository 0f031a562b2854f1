"""The job's per-element work as plain functions; the executor (lvm_data.job.executor) and the plain loop
(lvm_data.job.loop) call them.

Stages and their contracts:
- `read_items(runtime, read_unit, selection)`: ItemRefs of a unit, each with `unit` set to its write unit;
  a unit the source cannot read at all yields one failed ref, never an exception. `unit_groups` gives a
  work unit's refs in the groups they are built in; `buckets_fed` which buckets a read unit feeds.
- `prepare(runtime, settings, refs)`: decode + curation filters (lvm_data.curation.stage) + template.build
  -> (Pending sentences, ItemEvents for items that failed or were filtered). Nothing escapes: an
  unexpected exception is an `internal_error` event.
- `tokenize(tokenizer, pendings)`: encode all frames of a batch at once; a failing batch is split and
  retried per sentence; a sentence that still fails marks its items `tokenize_error`.
- `finish_unit(commit, expected, events, rows, curation=...)`: token-space removals and curation files
  (lvm_data.curation.units), then the unit's ledger, files and marker (merged with the unit's existing
  files for retry-failed).
"""

from __future__ import annotations

import itertools
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from lvm_data.curation import units as curation_units
from lvm_data.curation.removed_samples import thumbnail
from lvm_data.curation.stage import Stage
from lvm_data.items import DecodedItem, ItemRef
from lvm_data.job.config import JobConfig, SourceConfig, source_options
from lvm_data.job.plan import ReadUnit, WorkUnit, bucket_of
from lvm_data.media.contract import DecodeSettings
from lvm_data.media.decode import decode_item
from lvm_data.outcomes import ItemError, Outcome, Reason, Status
from lvm_data.sentences.base import Sentence, Template, TemplateContext
from lvm_data.sentences.registry import make_template
from lvm_data.shards.ledger import ItemEvent, resolve_unit
from lvm_data.shards.ledger import rows_from_table as ledger_rows
from lvm_data.shards.reader import read_marker, read_unit_files, sentence_rows
from lvm_data.shards.writer import SentenceRow, UnitCommit, commit_unit
from lvm_data.sources.base import Source
from lvm_data.sources.listing import failed_ref
from lvm_data.sources.registry import make_source

if TYPE_CHECKING:  # lvm_data.tokenizer loads torch, which this module's readers need not
    from lvm_data.tokenizer.tokenizer import Tokenizer

SINGLE_GROUP = "\x00item:"  # group key prefix of an item a grouping template builds alone


@dataclass
class SourceRuntime:
    """A source's reader and template, built once per worker from the job config."""

    name: str
    source: Source
    template: Template
    grouped: bool = False
    n_buckets: int = 0
    stage: Stage | None = None  # the source's curation filters (None: none configured)


def make_runtime(
    job: JobConfig, src: SourceConfig, *, grouped: bool = False, n_buckets: int = 0, index: bool = True
) -> SourceRuntime:
    """`index`: look up the job's image dedup index (False while building it)."""
    context = TemplateContext(seed=job.seed, image_size=job.image_size or 256)
    stage = Stage.for_source(job.output, src.name, job.curation.of(src.name), index=index)
    return SourceRuntime(
        src.name,
        make_source(src.name, source_options(job, src)),
        make_template(src.template, src.template_options, context),
        grouped,
        n_buckets,
        stage,
    )


@dataclass(frozen=True)
class Selection:
    """Which write units of a source this run produces, and for retry-failed which keys of each.

    `retry[unit] = (failed keys, all keys in the unit's ledger)`: an item is retried when it failed or
    was never recorded (e.g. a container member that was unreadable last time). A selected unit without a
    `retry` entry is produced whole: every key (a grouping template's bucket that retry-failed rebuilds, see
    lvm_data.job.runs.retry_selection).
    """

    units: frozenset[str]
    retry: dict[str, tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)

    def merges(self, unit: str) -> bool:
        """Whether committing `unit` keeps part of its committed files (retry-failed redoes some of its keys);
        a unit produced whole replaces them."""
        return unit in self.retry

    def wants(self, unit: str, key: str) -> bool:
        if unit not in self.units:
            return False
        if unit not in self.retry:
            return True
        failed, known = self.retry[unit]
        return key in failed or key not in known


def read_items(rt: SourceRuntime, read_unit: ReadUnit, selection: Selection) -> Iterator[ItemRef]:
    """The unit's refs that this run wants, each with `unit` = its write unit and the dedup index's decision."""
    mark = rt.stage.marker(read_unit.unit.id) if rt.stage else None
    for ref in itertools.islice(_read_guarded(rt, read_unit), read_unit.max_items):
        if rt.grouped:
            ref = replace(ref, unit=bucket_of(group_key(rt, ref), rt.n_buckets))
        if selection.wants(ref.unit, ref.key):
            yield mark(ref) if mark else ref


def buckets_fed(rt: SourceRuntime, read_unit: ReadUnit, selection: Selection) -> list[str]:
    """The write buckets that the wanted items of a grouping source's read unit land in (refs only)."""
    return sorted({ref.unit for ref in read_items(rt, read_unit, selection)})


def unit_groups(rt: SourceRuntime, work: WorkUnit, selection: Selection) -> Iterator[list[ItemRef]]:
    """A work unit's refs in the groups that are decoded and built together.

    Templates that build items alone: one ref per group, as the unit is read (nothing is held). A grouping
    template's bucket: every ref of its read units that lands in it (others belong to other buckets), then
    its groups in group-key order, each sorted by key.
    """
    if not work.grouped:
        for read_unit in work.read_units:
            for ref in read_items(rt, read_unit, selection):
                yield [ref]
        return
    groups: dict[str, list[ItemRef]] = {}
    for read_unit in work.read_units:
        for ref in read_items(rt, read_unit, selection):
            if ref.unit == work.unit:
                groups.setdefault(group_key(rt, ref), []).append(ref)
    for key in sorted(groups):
        yield sorted(groups[key], key=lambda r: r.key)


def _read_guarded(rt: SourceRuntime, read_unit: ReadUnit) -> Iterator[ItemRef]:
    unit = read_unit.unit
    try:
        yield from rt.source.read(unit)
    except Exception as err:  # noqa: BLE001 - an unreadable unit becomes a ledger row, not a crash
        first = unit.spec[0] if unit.spec else unit.id  # a URI, or a spec entry (FileEntry, a tuple holding one)
        while isinstance(first, tuple) and first:
            first = first[0]
        yield failed_ref(
            rt.name,
            f"{unit.id}#unreadable",
            unit.id,
            str(first),
            Reason.READ_ERROR,
            f"unit {unit.name}: {type(err).__name__}: {err}",
        )


def group_key(rt: SourceRuntime, ref: ItemRef) -> str:
    """The template's group key, or a key of the item's own when the template builds it alone."""
    key = rt.template.group_key(ref) if rt.grouped else None
    return SINGLE_GROUP + ref.key if key is None else key


@dataclass
class Pending:
    """A built sentence on its way to the tokenizer, with the URIs of its items for the ledger."""

    sentence: Sentence
    item_uris: dict[str, str]

    @property
    def n_images(self) -> int:
        return self.sentence.n_images

    def pixels(self) -> np.ndarray:
        return np.stack([f.pixels for f in self.sentence.frames])  # (n_images, S, S, 3) uint8


@dataclass
class Tokenized:
    """A sentence's outcome after the tokenizer: its row (None when it failed) and its items' events."""

    source: str
    unit: str
    row: SentenceRow | None
    events: list[ItemEvent]
    encode_s: float = 0.0  # this sentence's share of its batch's encoding time


def decode_guarded(ref: ItemRef, settings: DecodeSettings) -> DecodedItem | Outcome:
    """The decoded item, or the failed outcome (any unexpected exception is an internal_error)."""
    try:
        return decode_item(ref, settings)
    except ItemError as err:
        return err.outcome()
    except Exception as err:  # noqa: BLE001 - the item boundary: a bug in a decoder fails one item
        return Outcome.failed(Reason.INTERNAL_ERROR, f"{ref.uri}: {_describe(err)}")


def screen_item(
    rt: SourceRuntime, settings: DecodeSettings, ref: ItemRef
) -> tuple[DecodedItem | None, list[ItemEvent]]:
    """Decode one ref through its source's curation stage: the item to build (None: removed or failed)
    and its events. A removal decided before decoding skips the decode unless it is a report sample."""
    early = rt.stage.before_decode(ref) if rt.stage else None
    if early is not None and not early.sample:
        return None, [ItemEvent(ref.key, ref.uri, early.outcome)]
    result = decode_guarded(ref, settings)
    if early is not None:
        sample = thumbnail(result.frames[0].pixels) if isinstance(result, DecodedItem) and result.frames else None
        return None, [ItemEvent(ref.key, ref.uri, early.outcome, sample=sample)]
    if isinstance(result, Outcome):
        return None, [ItemEvent(ref.key, ref.uri, result)]
    if rt.stage is None:
        return result, []
    try:
        screened = rt.stage.after_decode(result)
    except Exception as err:  # noqa: BLE001 - a bug in a filter fails its item, visibly
        return None, [
            ItemEvent(ref.key, ref.uri, Outcome.failed(Reason.INTERNAL_ERROR, f"curation filter: {_describe(err)}"))
        ]
    return screened.item, screened.events


def prepare(rt: SourceRuntime, settings: DecodeSettings, refs: list[ItemRef]) -> tuple[list[Pending], list[ItemEvent]]:
    """Decode and filter `refs` (one group, sorted by key) and build its sentences; removals and failures
    become events."""
    refs = sorted(refs, key=lambda r: r.key)
    events, decoded = [], []
    for ref in refs:
        item, found = screen_item(rt, settings, ref)
        events += found
        if item is not None:
            decoded.append(item)
    if not decoded:
        return [], events
    try:
        built = rt.template.build(decoded)
    except Exception as err:  # noqa: BLE001 - a template bug fails its group, visibly
        outcome = Outcome.failed(Reason.INTERNAL_ERROR, f"template {rt.template.name}: {_describe(err)}")
        return [], events + [ItemEvent(d.key, d.ref.uri, outcome) for d in decoded]
    for sentence in built.sentences:
        sentence.unit = refs[0].unit  # a group shares one write unit; templates need not know about units
    uris = {d.key: d.ref.uri for d in decoded}
    events += [ItemEvent(key, uris.get(key, ""), outcome) for key, outcome in sorted(built.outcomes.items())]
    used = {key for s in built.sentences for key in s.item_keys} | set(built.outcomes)
    events += [
        ItemEvent(
            d.key,
            d.ref.uri,
            Outcome.failed(
                Reason.INTERNAL_ERROR, f"template {rt.template.name} gave this item neither a sentence nor an outcome"
            ),
        )
        for d in decoded
        if d.key not in used
    ]
    pendings = [Pending(s, {k: uris.get(k, "") for k in s.item_keys}) for s in built.sentences]
    return pendings, events


def tokenize(tokenizer: Tokenizer, pendings: list[Pending]) -> list[Tokenized]:
    """Encode every frame of the batch in one call; on failure retry sentence by sentence."""
    if not pendings:
        return []
    try:
        codes = tokenizer.encode(batch_frames(pendings))  # (sum n_images, T) uint16
    except Exception as err:  # noqa: BLE001 - split and retry; a sentence that still fails is recorded
        if len(pendings) == 1:
            return [_failed(pendings[0], err)]
        return [t for p in pendings for t in tokenize(tokenizer, [p])]
    return tokenized(pendings, codes, tokenizer.runs_on())


def batch_frames(pendings: list[Pending]) -> np.ndarray:
    """Every frame of the sentences, in order: (sum n_images, S, S, 3) uint8."""
    return np.stack([f.pixels for p in pendings for f in p.sentence.frames])


def tokenized(pendings: list[Pending], codes: np.ndarray, device: str) -> list[Tokenized]:
    """The sentences' outcomes from the codes of all their frames, in order; `device` says where codes were made
    (the manifest records it)."""
    out, start = [], 0
    for p in pendings:
        out.append(_done(p, codes[start : start + p.n_images], device))
        start += p.n_images
    return out


def _done(p: Pending, codes: np.ndarray, device: str) -> Tokenized:
    s = p.sentence
    row = SentenceRow(
        id=s.id,
        source=s.source,
        template=s.template,
        task=s.task,
        n_images=s.n_images,
        tokens=np.ascontiguousarray(codes, dtype=np.uint16).reshape(-1),
        frames=[(f.uri, f.index, f.role) for f in s.frames],
        item_keys=list(s.item_keys),
        device=device,
    )
    events = [ItemEvent(k, p.item_uris.get(k, ""), Outcome.ok(), s.id) for k in s.item_keys]
    return Tokenized(s.source, s.unit, row, events)


def _failed(p: Pending, err: Exception) -> Tokenized:
    s = p.sentence
    outcome = Outcome.failed(Reason.TOKENIZE_ERROR, f"sentence {s.id}: {_describe(err)}")
    return Tokenized(s.source, s.unit, None, [ItemEvent(k, p.item_uris.get(k, ""), outcome) for k in s.item_keys])


def _describe(err: Exception) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(err).__name__}: {err}{where}"


def finish_unit(
    commit: UnitCommit,
    expected: list[str],
    events: list[ItemEvent],
    rows: list[SentenceRow],
    merge: bool = False,
    curation: curation_units.UnitCuration | None = None,
    timings: Callable[[], dict] | None = None,
) -> tuple[dict, Counter]:
    """Resolve the unit's ledger and commit it; with `merge` (retry-failed), keep what `kept_rows` keeps of the
    unit's committed files. `curation` (sources with filters): token-space removals and the curation files,
    counted in the marker. `timings`: called just before the marker is written, for its step timings
    (lvm_data.shards.timings).

    Returns the marker and this run's ledger tallies as `<status>_<reason>` -> rows (for counters).
    """
    kept = kept_rows(commit, set(expected) | {e.key for e in events}) if merge else None
    counts = None
    if curation is not None:
        curated = curation_units.apply(commit, events, rows, curation, kept is not None)
        rows, events, counts = curated.rows, curated.events, curated.counts
    ledger = resolve_unit(commit.source, commit.unit, expected, events)
    tallies = Counter(f"{r.status}_{r.reason}" for r in ledger)
    if kept is not None:
        if counts is not None:
            counts = curation_units.merged_counts(kept.marker["counts"].get("curation"), counts)
        old_ids = {r.id for r in kept.rows}
        ledger = kept.ledger + ledger
        rows = kept.rows + [r for r in rows if r.id not in old_ids]
    return commit_unit(commit, rows, ledger, curation=counts, timings=timings), tallies


@dataclass
class Kept:
    """What a retried unit keeps of its committed files."""

    marker: dict
    ledger: list
    rows: list[SentenceRow]


def kept_rows(commit: UnitCommit, redone: set[str]) -> Kept | None:
    """What a unit that retry-failed redoes `redone` keys of keeps of its committed files: the ledger rows of
    the other items, less the failed ones (every failed key is retried; one this run does not read again
    stood for a whole unit that was unreadable), and the sentences of those rows (a rebuilt group's sentences
    replace the old ones of its items). None when nothing is kept (every item was redone): the new files
    replace the old, curation counts and files too. A unit retry-failed produces whole (`Selection.merges`
    false) is committed without `merge`, so that no row of an item that is gone from its inputs survives.
    """
    marker = read_marker(commit.out, commit.source, commit.unit)
    if marker is None:
        return None
    old_sentences, old_ledger = read_unit_files(commit.out, marker)
    ledger = [r for r in ledger_rows(old_ledger) if r.key not in redone and r.status != Status.FAILED.value]
    if not ledger:
        return None
    ids = {sid for r in ledger for sid in r.sentence_ids}
    rows = [r for r in sentence_rows(old_sentences) if r.id in ids]
    return Kept(marker, ledger, rows)
