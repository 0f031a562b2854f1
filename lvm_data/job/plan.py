"""Plan a job on the driver: work units per source, what is committed already, what this run writes.

Read units come from `Source.plan()`. Write units (one Parquet file each) are the read units for
templates that build items alone, and `n_buckets` hash buckets of the group key (`g000000`, ...)
for templates that group items, so that a grouped sentence always lands in the same file and
resume keeps working. Every write unit has a digest of the inputs it was planned from: its spec, and the
size and modification time of each file it reads (`Source.files`: a file changed in place is noticed; on gs://
the object's update time, which a new generation changes). A committed unit whose digest or job config hash
differs from this plan is a `ResumeError`, and so is a marker of a source the job no longer has. Markers written
before the digest held sizes and times (a spec-only digest) are compared by spec alone (`SourcePlan.spec_digests`).

What a runner distributes is a `WorkUnit`: one write unit and the read units that feed it, no media
bytes. For templates that build items alone a work unit is its read unit; for grouping templates the
read units whose items land in the bucket are found from item references before any decode
(`lvm_data.job.steps.buckets_fed`), so a bucket is processed end to end where it lands, like any unit.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow.fs as pafs

from lvm_data import localfs, storage
from lvm_data.determinism import derive_seed, digest
from lvm_data.sentences.base import Template
from lvm_data.sources.base import Source, Unit


class ResumeError(RuntimeError):
    """The output folder holds units from other inputs or another job configuration."""


@dataclass(frozen=True)
class ReadUnit:
    """A unit to read; `max_items` caps it when the job runs with --limit."""

    source: str
    unit: Unit
    max_items: int | None = None


@dataclass(frozen=True)
class WorkUnit:
    """One write unit to process end to end (read, decode, build, encode, write, commit) where it lands.

    `read_units`: the unit itself, or for a grouping template's bucket the read units with items in it
    (their other items belong to other buckets and are skipped when read). Small and picklable.
    """

    source: str
    unit: str
    spec_digest: str
    read_units: tuple[ReadUnit, ...]
    grouped: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.unit)

    @property
    def name(self) -> str:
        return f"{self.source}/{self.unit}"


@dataclass(frozen=True)
class SourcePlan:
    name: str
    grouped: bool
    read_units: tuple[ReadUnit, ...]
    write_units: tuple[str, ...]
    digests: dict[str, str]  # write unit -> digest of its planned inputs
    n_buckets: int = 0  # grouped sources: number of write buckets
    known_items: int = 0  # items counted at planning time
    unknown_units: int = 0  # units whose item count is known only when read (containers)
    committed: frozenset[str] = field(default_factory=frozenset)
    staged: frozenset[str] = field(default_factory=frozenset)  # tokenized, waiting for token-space dedup
    spec_digests: dict[str, str] = field(default_factory=dict)  # the digests without file sizes and times (older
    # outputs' markers hold these; such units are compared by spec alone)

    @property
    def pending(self) -> tuple[str, ...]:
        return tuple(u for u in self.write_units if u not in self.committed)

    @property
    def to_read(self) -> tuple[ReadUnit, ...]:
        """Units this run reads: pending ones; for grouped sources all of them while any bucket is pending."""
        if self.grouped:
            return self.read_units if self.pending else ()
        return tuple(r for r in self.read_units if r.unit.id not in self.committed)

    @functools.cached_property
    def read_order(self) -> dict[str, int]:
        """Read unit id -> its position in the plan."""
        return {r.unit.id: i for i, r in enumerate(self.read_units)}

    def bucket_unit(self, bucket: str, read_units) -> WorkUnit:
        """A grouping source's bucket as a work unit, fed by `read_units` (once each, in plan order)."""
        feeding = sorted({r.unit.id: r for r in read_units}.values(), key=lambda r: self.read_order[r.unit.id])
        return WorkUnit(self.name, bucket, self.digests[bucket], tuple(feeding), grouped=True)

    def estimated_items(self, shard_size: int) -> int:
        """Items counted at planning, plus a guess for each unit counted only when read (`unit_guess`)."""
        return self.known_items + sum(unit_guess(r, shard_size) for r in self.read_units if r.unit.n_items is None)


CONTAINER_ITEMS = 10_000  # a guess for a unit counted only when read (a tar): img2dataset's samples per shard


def unit_guess(read_unit: ReadUnit, shard_size: int) -> int:
    """Items expected of a unit whose count is known only when it is read (estimates and progress only)."""
    return read_unit.max_items or min(shard_size, CONTAINER_ITEMS)


def is_grouping(template: Template) -> bool:
    """A template that overrides `group_key` builds items in groups (GroupByKey before decoding)."""
    return type(template).group_key is not Template.group_key


def unit_digest(read_unit: ReadUnit, stamps: Sequence | None = None) -> str:
    """The unit's spec and limit, and `stamps` ((size, mtime) of each file it reads) when there are any: with none,
    the spec-only digest that outputs before stamps hold."""
    spec = [list(read_unit.unit.spec), read_unit.max_items]
    return digest([json.dumps([*spec, [list(s) for s in stamps]] if stamps else spec, default=str)])


def input_stamps(source: Source, read_units: Sequence[ReadUnit]) -> dict[str, list[tuple]]:
    """Unit id -> (size, mtime in ns) of each file `Source.files` names for it, all looked up together."""
    files = {r.unit.id: source.files(r.unit) for r in read_units}
    stamps = file_stamps(sorted({uri for uris in files.values() for uri in uris}))
    return {unit: [stamps[uri] for uri in uris] for unit, uris in files.items() if uris}


def file_stamps(uris: Sequence[str]) -> dict[str, tuple]:
    """URI -> (size, mtime in ns): os.stat for local paths (percent-escaped names too, see localfs), one
    storage.file_infos call for remote ones (a listing per folder). What is missing, or what a store does not say
    (a folder on gs://, an HTTP server's times), is None."""
    out: dict[str, tuple] = {}
    remote = [uri for uri in uris if storage.is_remote(uri)]
    for info in storage.file_infos(remote) if remote else []:
        out[info.path] = (info.size, info.mtime_ns) if info.type != pafs.FileType.NotFound else (None, None)
    for uri in uris:
        if uri not in out:
            try:
                st = os.stat(localfs.os_path(os.path.expanduser(uri)))
                out[uri] = (st.st_size, st.st_mtime_ns)
            except OSError:  # gone since it was listed: its unit fails when read
                out[uri] = (None, None)
    return out


def apply_limit(source: str, units: list[Unit], limit: int | None) -> list[ReadUnit]:
    """Read units for the first `limit` items in plan order (all units when limit is None)."""
    if limit is None:
        return [ReadUnit(source, u) for u in units]
    out, remaining = [], limit
    for unit in units:
        if remaining <= 0:
            break
        take = remaining if unit.n_items is None else min(unit.n_items, remaining)
        out.append(ReadUnit(source, unit, take if unit.n_items is None or take < unit.n_items else None))
        remaining -= take
    return out


def bucket_id(index: int) -> str:
    return f"g{index:06d}"


def bucket_of(group_key: str, n_buckets: int) -> str:
    """The write unit of a group: a stable hash bucket of its key."""
    return bucket_id(derive_seed(0, "bucket", group_key) % n_buckets)


def plan_source(name: str, source: Source, template: Template, *, limit: int | None, shard_size: int) -> SourcePlan:
    """The source's units (no resume information yet)."""
    read_units = apply_limit(name, source.plan(), limit)
    known = sum(r.max_items or r.unit.n_items for r in read_units if r.unit.n_items is not None)
    unknown = sum(1 for r in read_units if r.unit.n_items is None)
    stamps = input_stamps(source, read_units)
    digests = {r.unit.id: unit_digest(r, stamps.get(r.unit.id)) for r in read_units}
    specs = {r.unit.id: unit_digest(r) for r in read_units}
    if not is_grouping(template):
        return SourcePlan(
            name, False, tuple(read_units), tuple(digests), digests, 0, known, unknown, spec_digests=specs
        )
    estimate = known + sum(min(r.max_items or shard_size, shard_size) for r in read_units if r.unit.n_items is None)
    n_buckets = max(1, math.ceil(estimate / shard_size))
    whole = digest([str(n_buckets), *digests.values()])  # any input change may move any group
    whole_spec = digest([str(n_buckets), *specs.values()])
    buckets = tuple(bucket_id(i) for i in range(n_buckets))
    return SourcePlan(
        name,
        True,
        tuple(read_units),
        buckets,
        {b: whole for b in buckets},
        n_buckets,
        known,
        unknown,
        spec_digests={b: whole_spec for b in buckets},
    )


def check_sources(markers: list[dict], sources: Sequence[str], out: str) -> None:
    """Refuse an output holding committed units of a source the job does not have (renamed or removed since they
    were written): they would stay beside the new ones, counted in the manifest."""
    foreign: dict[str, int] = {}
    for marker in markers:
        if marker.get("source") not in sources:
            foreign[str(marker.get("source"))] = foreign.get(str(marker.get("source")), 0) + 1
    if foreign:
        names = ", ".join(f"{name!r} ({n} unit{'s' if n != 1 else ''})" for name, n in sorted(foreign.items()))
        raise ResumeError(
            f"{out} holds committed units of source {names}, which the job file no longer has (its "
            f"sources: {', '.join(sources)}); use a new output folder, or give the source its old name "
            "again in the job file"
        )


def with_committed(plan: SourcePlan, markers: list[dict], config_hash: str, out: str) -> SourcePlan:
    """The plan with its committed units, after checking each marker matches this job and these inputs."""
    committed = set()
    for marker in markers:
        unit = marker["unit"]
        where = f"{out}: unit {plan.name}/{unit}"
        if marker.get("config_hash") != config_hash:
            raise ResumeError(
                f"{where} was written by another job configuration (config hash "
                f"{marker.get('config_hash')} vs {config_hash}); use a new output folder, "
                "or restore the job file and tokenizer it was written with"
            )
        if unit not in plan.digests:
            raise ResumeError(
                f"{where} is committed but this run does not plan it: the inputs changed; use a new output folder"
            )
        if marker.get("spec_digest") not in {plan.digests[unit], plan.spec_digests.get(unit, plan.digests[unit])}:
            raise ResumeError(
                f"{where} was committed from different inputs than this run plans (other files, or "
                "a file whose size or modification time changed since); use a new output folder, or "
                "restore the inputs it was written from"
            )
        committed.add(unit)
    return dataclasses.replace(plan, committed=frozenset(committed))
