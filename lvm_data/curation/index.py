"""The job-wide image dedup index: which items exact and near duplicates remove, decided once per output.

It is built before the job tokenizes anything, over every item of the sources that list `duplicates`
or `near_duplicates` (all their units, committed or not), so no decision depends on runner, resume,
worker count or arrival order:

1. `signatures(...)`: decode each item, run its source's item filters (an item they remove is no
   candidate: it will not be written, so it cannot be anyone's survivor), and take the pixel digest
   and/or perceptual hash of its first frame.
2. exact duplicates: equal digests; the first id (source, key) survives (lvm_data.curation.survivors).
3. near duplicates: among the near pool's remaining candidates, pairs within `max_distance` bits,
   found by banding (lvm_data.curation.banding); an id with an earlier neighbour is removed.
4. the removals are written per (source, read unit), then OUT/curation/index/index.json.

The job's filter stage then removes those items before decoding them. pipelines/curation.py runs
steps 1-4 in Beam (GroupByKey per digest and per band bucket); `build_local` runs them in-process with
`decide`; both give the same removals. Costs one extra decode of every item of the pooled sources.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from lvm_data import storage
from lvm_data.curation import store
from lvm_data.curation.banding import near_pairs
from lvm_data.curation.config import NearDuplicates, pool_setting, source_filters
from lvm_data.curation.hashes import perceptual_hash, pixel_digest
from lvm_data.curation.survivors import Id, group_exact, near_losers
from lvm_data.determinism import digest
from lvm_data.outcomes import Outcome, Reason


@dataclass(frozen=True)
class IndexSettings:
    """Which sources are in which pool, and the near pool's setting."""

    exact: frozenset[str]
    near: frozenset[str]
    near_duplicates: NearDuplicates | None = None

    @property
    def sources(self) -> list[str]:
        return sorted(self.exact | self.near)


def index_settings(job) -> IndexSettings:
    filters = source_filters(job)
    return IndexSettings(frozenset(n for n, f in filters.items() if "duplicates" in f.pooled),
                         frozenset(n for n, f in filters.items() if "near_duplicates" in f.pooled),
                         pool_setting(job, "near_duplicates"))


@dataclass(frozen=True)
class ItemSignature:
    """A candidate of the index: where it was read, and its digest / perceptual hash (None outside a pool)."""

    source: str
    key: str
    read_unit: str
    uri: str
    digest: str | None = None
    phash: int | None = None

    @property
    def id(self) -> Id:
        return (self.source, self.key)


@dataclass(frozen=True, order=True)
class Removal:
    source: str
    read_unit: str
    key: str
    reason: str
    detail: str


def signature(settings: IndexSettings, source: str, read_unit: str, item) -> ItemSignature:
    """The candidate record of a decoded item that passed its source's item filters."""
    pixels = item.frames[0].pixels
    near = settings.near_duplicates
    return ItemSignature(source, item.key, read_unit, item.ref.uri,
                         pixel_digest(pixels) if source in settings.exact else None,
                         perceptual_hash(near.hash, pixels) if near and source in settings.near else None)


def exact_removal(loser: ItemSignature, survivor: ItemSignature) -> Removal:
    return Removal(loser.source, loser.read_unit, loser.key, Reason.DUPLICATE.value,
                   f"same decoded pixels as {survivor.uri} (source {survivor.source}), which is kept")


def near_removal(loser: ItemSignature, survivor: ItemSignature, distance: float, kind: str) -> Removal:
    return Removal(loser.source, loser.read_unit, loser.key, Reason.NEAR_DUPLICATE.value,
                   f"{kind} distance {int(distance)} from {survivor.uri} (source {survivor.source}), which "
                   "sorts first")


def decide(signatures: Iterable[ItemSignature], near: NearDuplicates | None) -> list[Removal]:
    """Steps 2-3 in-process: the removals among `signatures` (any order), sorted."""
    sigs = sorted(signatures, key=lambda s: s.id)
    where = {s.id: s for s in sigs}
    exact = group_exact((s.digest, s.id) for s in sigs if s.digest is not None)
    removals = [exact_removal(where[m.loser], where[m.survivor]) for m in exact]
    if near is not None:
        gone = {m.loser for m in exact}
        pool = [s for s in sigs if s.phash is not None and s.id not in gone]
        i, j, d = near_pairs(np.array([s.phash for s in pool], dtype=np.uint64), near.max_distance, near.banding)
        matches = near_losers((pool[a].id, pool[b].id, int(c)) for a, b, c in zip(i, j, d, strict=True))
        removals += [near_removal(where[m.loser], where[m.survivor], m.distance, near.hash) for m in matches]
    return sorted(removals)


def write_removals(out: str, removals: Iterable[Removal]) -> Counter:
    """One removal file per (source, read unit); returns removals per reason."""
    by_unit: dict[tuple[str, str], list[Removal]] = {}
    for r in removals:
        by_unit.setdefault((r.source, r.read_unit), []).append(r)
    for (source, unit), rows in by_unit.items():
        store.write_removals(out, source, unit, [(r.key, r.reason, r.detail) for r in rows])
    return Counter(r.reason for rows in by_unit.values() for r in rows)


def inputs_digest(run) -> str:
    """Digest of the planned inputs of the pooled sources and of their blocklist files (which decide who
    can be a candidate): an index of other inputs is rebuilt."""
    job = run.context.job
    plans = [run.plans[name] for name in index_settings(job).sources]
    files = sorted({uri for name in index_settings(job).sources for uri in _blocklist_files(job, name)})
    return digest([f"{p.name}/{unit}/{p.digests[unit]}" for p in plans for unit in p.write_units]
                  + [f"{uri}:{hashlib.blake2b(storage.read_bytes(uri), digest_size=16).hexdigest()}" for uri in files])


def _blocklist_files(job, source: str) -> tuple[str, ...]:
    spec = source_filters(job)[source].get("blocklist")
    return () if spec is None else spec.pattern_files + spec.hash_files


def marker_document(run, settings: IndexSettings, candidates: int, removed: dict[str, int], runner: str) -> dict:
    near = settings.near_duplicates
    return {"config_hash": run.context.config_hash, "inputs_digest": inputs_digest(run),
            "sources": settings.sources, "candidates": int(candidates),
            "removed": dict(sorted(removed.items())), "runner": runner,
            "near_duplicates": None if near is None else {"hash": near.hash, "max_distance": near.max_distance,
                                                          "bands": near.banding.bands, "radius": near.banding.radius},
            "finished": datetime.now(UTC).isoformat(timespec="seconds")}


def is_current(run) -> bool:
    """Whether the run's output holds a finished index for this job configuration and these inputs."""
    marker = store.read_index_marker(run.context.out)
    return (marker is not None and marker.get("config_hash") == run.context.config_hash
            and marker.get("inputs_digest") == inputs_digest(run))


def plan_lines(run) -> list[str]:
    """Dry-run lines: each source's filters, and whether the image dedup index exists or will be built."""
    job = run.context.job
    lines = [f"  filters of {name}: {', '.join(_names(job.source(name).filters))}"
             for name, f in source_filters(job).items() if f.any]
    settings = index_settings(job)
    if settings.sources:
        state = "built" if is_current(run) else "to build first (decodes every item of them once)"
        lines.append(f"image dedup index over {', '.join(settings.sources)}: {state}")
    return lines


def _names(entries) -> list[str]:
    return [name for entry in entries for name in entry]


def sign_unit(rt, settings, index: IndexSettings, read_unit, selection) -> Iterator[ItemSignature]:
    """Candidates of one read unit: decoded, filtered, hashed (`rt` built without index lookups)."""
    from lvm_data.job.steps import decode_guarded, read_items

    for ref in read_items(rt, read_unit, selection):
        early = rt.stage.before_decode(ref) if rt.stage else None
        if early is not None:
            continue
        decoded = decode_guarded(ref, settings)
        if isinstance(decoded, Outcome):
            continue  # failed: it will be a failed ledger row, never a survivor
        item = rt.stage.after_decode(decoded).item if rt.stage else decoded
        if item is not None and item.frames:
            yield signature(index, ref.source, read_unit.unit.id, item)


def build_local(run) -> dict:
    """Build the index in-process over every unit of the pooled sources; returns the marker written."""
    from lvm_data.job.steps import Selection

    ctx, index = run.context, index_settings(run.context.job)
    sigs = []
    for name in index.sources:
        rt, plan = ctx.runtime(name, index=False), run.plans[name]
        selection = Selection(frozenset(plan.write_units))
        for read_unit in plan.read_units:
            sigs += sign_unit(rt, ctx.settings(), index, read_unit, selection)
    store.clear_index(ctx.out)
    removed = write_removals(ctx.out, decide(sigs, index.near_duplicates))
    marker = marker_document(run, index, len(sigs), removed, "local loop")
    store.write_index_marker(ctx.out, marker)
    return marker
