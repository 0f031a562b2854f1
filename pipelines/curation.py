"""Curation in Beam: the job-wide image dedup index, and token-space dedup inside the main job.

Both are pipelines of their own around the main job, thin wiring of lvm_data.curation's plain functions:

  index (before): ReadUnits -> SignItems -> ExactDedup (GroupByKey digest) -> NearDedup (GroupByKey band
             bucket, CombinePerKey nearest earlier id) -> removals per (source, read unit) -> files -> index.json
  sentences (after): staged units' signatures (+ committed units') -> ExactDedup -> NearDedup -> removals
             by (source, unit) -> JoinStaged -> CommitStaged (each staged unit's files and marker)

No step compares all pairs: candidates meet only in a digest group or a band bucket. The survivor is
the smaller id (lvm_data.curation.survivors), so results do not depend on worker count.
"""

from __future__ import annotations

import time
from collections import Counter

import apache_beam as beam
from apache_beam.metrics.metric import Metrics
from apache_beam.pvalue import AsSingleton, TaggedOutput

from lvm_data.curation import banding, minhash, store
from lvm_data.curation import index as image_index
from lvm_data.curation import sentence_dedup as token_space
from lvm_data.curation.config import NearDuplicates
from lvm_data.curation.index import IndexInputs
from lvm_data.curation.minhash import MinHashSpec
from lvm_data.curation.sentence_dedup import SentenceSig
from lvm_data.job.dedup_index import index_inputs, needs_index, sign_unit
from lvm_data.job.runs import Run, RunContext
from lvm_data.job.staging import StagedUnit, read_staged, remove_staged
from lvm_data.job.steps import Selection, finish_unit
from lvm_data.shards.timings import staged_timings


def _count(stage: str, name: str, n: int = 1) -> None:
    Metrics.counter(f"lvm_data.{stage}", name).inc(n)


class FirstSurvives(beam.DoFn):
    """(digest, records) -> the first record ('kept'), and (loser, survivor) for the others."""

    def process(self, element):
        _digest, records = element
        records = sorted(records, key=lambda r: r.id)
        yield TaggedOutput("kept", records[0])
        for loser in records[1:]:
            yield loser, records[0]


class ByDigest(beam.DoFn):
    """A record -> 'keyed': (digest, record), or the record itself when it is not in the exact pool."""

    def process(self, record):
        if record.digest is None:
            yield record
        else:
            yield TaggedOutput("keyed", (record.digest, record))


class ExactDedup(beam.PTransform):
    """Records with `.id` and `.digest` (None: not in the exact pool) -> main: (loser, survivor); 'kept'."""

    def expand(self, records):
        split = records | "ByDigest" >> beam.ParDo(ByDigest()).with_outputs("keyed", main="outside")
        groups = (
            split.keyed
            | "GroupDigests" >> beam.GroupByKey()
            | "FirstSurvives" >> beam.ParDo(FirstSurvives()).with_outputs("kept", main="removed")
        )
        kept = (groups.kept, split.outside) | "Kept" >> beam.Flatten()
        return {"removed": groups.removed, "kept": kept}


def _nearest(votes):
    """A loser's vote: the nearest earlier id (then the first); the records ride along for the detail."""
    return min(votes, key=lambda v: (v[0], v[1].id))


class NearDedup(beam.PTransform):
    """Records -> (loser, survivor, distance) for every record with an earlier near duplicate.

    `buckets(record)` yields ((band, bucket), (record, is_probe)); `pairs(band, homes, probes)` yields
    (id_a, id_b, distance) with id_a < id_b, given (id, record) lists.
    """

    def __init__(self, buckets, pairs):
        super().__init__()
        self.buckets, self.pairs = buckets, pairs

    def _votes(self, element):
        (band, _bucket), members = element
        homes = [(r.id, r) for r, probe in members if not probe]
        probes = [(r.id, r) for r, probe in members if probe]
        records = dict(homes + probes)
        for a, b, distance in self.pairs(band, homes, probes):
            yield b, (distance, records[a], records[b])  # a < b: b is the loser, a its candidate survivor

    def expand(self, records):
        return (
            records
            | "Buckets" >> beam.FlatMap(self.buckets)
            | "GroupBuckets" >> beam.GroupByKey()
            | "Pairs" >> beam.FlatMap(self._votes)
            | "Nearest" >> beam.CombinePerKey(_nearest)
            | "Matches" >> beam.Map(lambda kv: (kv[1][2], kv[1][1], kv[1][0]))
        )


class ImageBuckets:
    """Band entries of a perceptual hash, and the pairs of a bucket (lvm_data.curation.banding)."""

    def __init__(self, spec: NearDuplicates):
        self.banding, self.max_distance = spec.banding, spec.max_distance

    def buckets(self, record):
        for band, bucket, probe in banding.entries(self.banding, record.phash):
            yield (band, bucket), (record, probe)

    def pairs(self, band, homes, probes):
        as_hashes = [(i, r.phash) for i, r in homes], [(i, r.phash) for i, r in probes]
        return banding.bucket_pairs(self.banding, band, *as_hashes, self.max_distance)


class SentenceBuckets:
    """MinHash LSH bands of a sentence signature, and the pairs of a bucket (lvm_data.curation.minhash)."""

    def __init__(self, spec: MinHashSpec):
        self.spec = spec

    def buckets(self, record):
        for band, bucket in minhash.band_keys(record.minhash, self.spec):
            yield (band, bucket), (record, False)

    def pairs(self, band, homes, probes):
        members = [(i, r.minhash) for i, r in homes]
        return [(a, b, 1.0 - s) for a, b, s in minhash.bucket_pairs(band, members, self.spec)]


class SignItems(beam.DoFn):
    """A read unit -> the index candidates among its items (decoded and filtered, hashed)."""

    def __init__(self, run: Run):
        self.ctx = run.context
        self.selections = {name: Selection(frozenset(plan.write_units)) for name, plan in run.plans.items()}

    def setup(self):
        self.settings = self.ctx.settings()
        self.index = image_index.index_settings(self.ctx.job.curation)
        self.runtimes = {name: self.ctx.runtime(name, index=False) for name in self.index.sources}

    def process(self, read_unit):
        rt = self.runtimes[read_unit.source]
        for signature in sign_unit(rt, self.settings, self.index, read_unit, self.selections[read_unit.source]):
            _count("index", "candidates")
            yield signature


def _near_image_removal(match, kind: str):
    loser, survivor, distance = match  # NearDedup's (loser, survivor, distance)
    return image_index.near_removal(loser, survivor, distance, kind)


def _write_unit(element, out: str) -> Counter:
    (source, unit), removals = element
    removals = sorted(removals)
    store.write_removals(out, source, unit, [(r.key, r.reason, r.detail) for r in removals])
    return Counter(r.reason for r in removals)


def build_index(p: beam.Pipeline, run: Run, runner: str) -> None:
    """Add the index's steps to `p`: candidates, exact and near duplicates, removal files, then index.json."""
    ctx, inputs = run.context, index_inputs(run)
    settings = inputs.settings
    units = [r for name in settings.sources for r in run.plans[name].read_units]
    candidates = (
        p
        | "IndexUnits" >> beam.Create(units)
        | "SpreadIndexUnits" >> beam.Reshuffle()
        | "SignItems" >> beam.ParDo(SignItems(run))
    )
    exact = candidates | "ExactDuplicates" >> ExactDedup()
    removals = [exact["removed"] | "ExactRemovals" >> beam.MapTuple(image_index.exact_removal)]
    near = settings.near_duplicates
    if near is not None:
        buckets = ImageBuckets(near)
        removals.append(
            exact["kept"]
            | "InNearPool" >> beam.Filter(lambda r: r.phash is not None)
            | "NearDuplicates" >> NearDedup(buckets.buckets, buckets.pairs)
            | "NearRemovals" >> beam.Map(_near_image_removal, kind=near.hash)
        )
    counts = (
        removals
        | "AllRemovals" >> beam.Flatten()
        | "ByReadUnit" >> beam.Map(lambda r: ((r.source, r.read_unit), r))
        | "GroupRemovals" >> beam.GroupByKey()
        | "WriteRemovals" >> beam.Map(_write_unit, out=ctx.out)
        | "SumRemovals" >> beam.CombineGlobally(lambda cs: sum(cs, Counter()))
    )
    total = candidates | "CountCandidates" >> beam.combiners.Count.Globally()
    _ = counts | "WriteIndexMarker" >> beam.Map(
        _write_marker, inputs=inputs, runner=runner, candidates=AsSingleton(total)
    )


def _write_marker(removed: Counter, inputs: IndexInputs, runner: str, candidates: int) -> None:
    store.write_index_marker(inputs.out, image_index.marker_document(inputs, candidates, dict(removed), runner))


def ensure_index(run: Run, runner, options, label: str) -> bool:
    """Build the job's image dedup index in OUT when it needs one and has none for this configuration."""
    if not needs_index(run):
        return False
    store.clear_index(run.context.out)
    with beam.Pipeline(runner=runner, options=options) as p:
        build_index(p, run, label)
    return True


class CommitStaged(beam.DoFn):
    """((source, unit), {digest, removed}) -> the staged unit committed with its token-space removals."""

    def __init__(self, ctx: RunContext, merge: frozenset[tuple[str, str]]):
        self.ctx, self.merge = ctx, merge  # (source, unit) of the units that keep part of their files (retry)

    def process(self, element):
        (source, unit), parts = element
        digests = list(parts["digest"])
        if not digests:
            raise RuntimeError(f"removals for unit {source}/{unit}, which is not staged in this run (bug)")
        staged = _staged(self.ctx, source, unit, digests[0])
        curation = self.ctx.unit_curation(source, parts["removed"], staged.signatures)
        marker, tallies = finish_unit(
            self.ctx.unit_commit(source, unit, digests[0]),
            staged.expected,
            staged.events,
            staged.rows,
            merge=(source, unit) in self.merge,
            curation=curation,
            timings=staged_timings(staged.timings, time.perf_counter()),
        )
        remove_staged(self.ctx.out, source, unit)
        _count("write", "units")
        for name, n in sorted(tallies.items()):
            _count("ledger", name, n)
        yield marker


def _staged(ctx: RunContext, source: str, unit: str, spec_digest: str) -> StagedUnit:
    staged = read_staged(ctx.out, source, unit, spec_digest, ctx.config_hash)
    if staged is None:
        raise RuntimeError(
            f"{ctx.out}: unit {source}/{unit} should be staged for token-space dedup but its staged "
            "file is missing or unreadable; run the job again (it redoes that unit)"
        )
    return staged


def _staged_signatures(entry: tuple[str, str, str], ctx: RunContext) -> list[SentenceSig]:
    source, unit, spec_digest = entry
    return _staged(ctx, source, unit, spec_digest).signatures


def commit_staged(run: Run, runner, options) -> None:
    """Token-space dedup after tokenizing, a pipeline of its own: the pool's decision over every staged unit's
    signatures and the committed units' (which take part but are never removed again), then each staged
    unit commits with its removals. Only signatures and removal records are grouped, never frames or media."""
    ctx = run.context
    settings = token_space.sentence_settings(ctx.job.curation)
    with beam.Pipeline(runner=runner, options=options) as p:
        units = p | "StagedUnits" >> beam.Create(run.staged_units())
        new = (
            units
            | "SpreadStaged" >> beam.Reshuffle()
            | "ReadStagedSignatures" >> beam.FlatMap(_staged_signatures, ctx=ctx)
        )
        committed = (
            p
            | "CommittedSignatureFiles"
            >> beam.Create(token_space.committed_files(ctx.out, run.kept_markers(), settings))
            | "ReadCommittedSignatures" >> beam.FlatMap(token_space.read_committed)
        )
        exact = (new, committed) | "AllSignatures" >> beam.Flatten() | "ExactSentences" >> ExactDedup()
        removals = [
            exact["removed"]
            | "ExactSentencesPending" >> beam.Filter(_not_committed)
            | "ExactSentenceRemovals" >> beam.MapTuple(token_space.exact_removal)
        ]
        if settings.near_duplicate_sentences is not None:
            buckets = SentenceBuckets(settings.near_duplicate_sentences)
            removals.append(
                exact["kept"]
                | "InNearSentencePool" >> beam.Filter(lambda s: s.minhash is not None)
                | "NearSentences" >> NearDedup(buckets.buckets, buckets.pairs)
                | "NearSentencesPending" >> beam.Filter(_not_committed)
                | "NearSentenceRemovals" >> beam.MapTuple(token_space.near_removal)
            )
        removed = (
            removals
            | "AllSentenceRemovals" >> beam.Flatten()
            | "RemovalsByUnit" >> beam.Map(lambda r: ((r.source, r.unit), r))
        )
        digests = units | "DigestsByUnit" >> beam.Map(lambda u: ((u[0], u[1]), u[2]))
        _ = (
            {"digest": digests, "removed": removed}
            | "JoinStaged" >> beam.CoGroupByKey()
            | "CommitStaged" >> beam.ParDo(CommitStaged(ctx, merge=run.merged_units()))
        )


def _not_committed(match) -> bool:
    """A committed unit's sentence takes part in decisions but is never removed again."""
    return not match[0].committed
