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
steps 1-4 in Beam (GroupByKey per digest and per band bucket); lvm_data.job.dedup_index.build_local runs them
in-process with `decide` and `write_index`; both give the same removals. Costs one extra decode of every item
of the pooled sources. The engine reads and decodes the items and says what the index is built for
(`IndexInputs`: the output, the config hash and the planned units); nothing here knows about runs or plans.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from lvm_data import storage
from lvm_data.curation import store
from lvm_data.curation.banding import near_pairs
from lvm_data.curation.config import CurationConfig, NearDuplicates
from lvm_data.curation.hashes import perceptual_hash, pixel_digest
from lvm_data.curation.stage import Stage
from lvm_data.curation.survivors import Id, group_exact, near_losers
from lvm_data.determinism import digest
from lvm_data.items import DecodedItem, ItemRef
from lvm_data.outcomes import Outcome, Reason


@dataclass(frozen=True)
class IndexSettings:
    """Which sources are in which pool, the near pool's setting, and the pooled sources' blocklist files (they
    decide who can be a candidate)."""

    exact: frozenset[str]
    near: frozenset[str]
    near_duplicates: NearDuplicates | None = None
    blocklist_files: tuple[str, ...] = ()  # sorted

    @property
    def sources(self) -> list[str]:
        return sorted(self.exact | self.near)


def index_settings(curation: CurationConfig) -> IndexSettings:
    exact, near = curation.members("duplicates"), curation.members("near_duplicates")
    specs = [curation.of(name).get("blocklist") for name in exact | near]
    files = sorted({uri for spec in specs if spec is not None for uri in spec.files})
    return IndexSettings(exact, near, curation.pool("near_duplicates"), tuple(files))


@dataclass(frozen=True)
class IndexInputs:
    """What an index is built for: the output, the job's config hash, its settings, and the pooled sources'
    planned write units as (source, unit, spec digest), in plan order (the engine's plan says which)."""

    out: str
    config_hash: str
    settings: IndexSettings
    units: tuple[tuple[str, str, str], ...]


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


def signature(settings: IndexSettings, source: str, read_unit: str, item: DecodedItem) -> ItemSignature:
    """The candidate record of a decoded item that passed its source's item filters."""
    pixels = item.frames[0].pixels
    near = settings.near_duplicates
    return ItemSignature(
        source,
        item.key,
        read_unit,
        item.ref.uri,
        pixel_digest(pixels) if source in settings.exact else None,
        perceptual_hash(near.hash, pixels) if near and source in settings.near else None,
    )


def exact_removal(loser: ItemSignature, survivor: ItemSignature) -> Removal:
    return Removal(
        loser.source,
        loser.read_unit,
        loser.key,
        Reason.DUPLICATE.value,
        f"same decoded pixels as {survivor.uri} (source {survivor.source}), which is kept",
    )


def near_removal(loser: ItemSignature, survivor: ItemSignature, distance: float, kind: str) -> Removal:
    return Removal(
        loser.source,
        loser.read_unit,
        loser.key,
        Reason.NEAR_DUPLICATE.value,
        f"{kind} distance {int(distance)} from {survivor.uri} (source {survivor.source}), which sorts first",
    )


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


def inputs_digest(inputs: IndexInputs) -> str:
    """Digest of the planned inputs of the pooled sources and of their blocklist files (read now): an index of
    other inputs is rebuilt."""
    files = inputs.settings.blocklist_files
    return digest(
        [f"{source}/{unit}/{spec_digest}" for source, unit, spec_digest in inputs.units]
        + [f"{uri}:{hashlib.blake2b(storage.read_bytes(uri), digest_size=16).hexdigest()}" for uri in files]
    )


def marker_document(inputs: IndexInputs, candidates: int, removed: dict[str, int], runner: str) -> dict:
    settings = inputs.settings
    near = settings.near_duplicates
    return {
        "config_hash": inputs.config_hash,
        "inputs_digest": inputs_digest(inputs),
        "sources": settings.sources,
        "candidates": int(candidates),
        "removed": dict(sorted(removed.items())),
        "runner": runner,
        "near_duplicates": None
        if near is None
        else {
            "hash": near.hash,
            "max_distance": near.max_distance,
            "bands": near.banding.bands,
            "radius": near.banding.radius,
        },
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def is_current(inputs: IndexInputs) -> bool:
    """Whether the output holds a finished index for this job configuration and these inputs."""
    marker = store.read_index_marker(inputs.out)
    return (
        marker is not None
        and marker.get("config_hash") == inputs.config_hash
        and marker.get("inputs_digest") == inputs_digest(inputs)
    )


def sign_items(
    refs: Iterable[ItemRef],
    read_unit: str,
    stage: Stage | None,
    decode: Callable[[ItemRef], DecodedItem | Outcome],
    index: IndexSettings,
) -> Iterator[ItemSignature]:
    """Candidates among a read unit's refs: decoded (`decode` turns a failure into its Outcome), filtered by the
    source's `stage` (built without index lookups), hashed."""
    for ref in refs:
        early = stage.before_decode(ref) if stage else None
        if early is not None:
            continue
        decoded = decode(ref)
        if isinstance(decoded, Outcome):
            continue  # failed: it will be a failed ledger row, never a survivor
        item = stage.after_decode(decoded).item if stage else decoded
        if item is not None and item.frames:
            yield signature(index, ref.source, read_unit, item)


def write_index(inputs: IndexInputs, signatures: Iterable[ItemSignature], runner: str) -> dict:
    """Steps 2-4 in-process over every candidate: the removal files, then the marker (returned)."""
    sigs = list(signatures)
    store.clear_index(inputs.out)
    removed = write_removals(inputs.out, decide(sigs, inputs.settings.near_duplicates))
    marker = marker_document(inputs, len(sigs), removed, runner)
    store.write_index_marker(inputs.out, marker)
    return marker
