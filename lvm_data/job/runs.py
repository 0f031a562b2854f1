"""A job run on the driver, runner-agnostic: open (tokenizer facts, config hash, plan, resume
checks), then any executor (the Beam pipeline, or the plain loop of the benchmark) processes
`read_units()` and commits `seeds()`, then `finish_run` writes the manifest from the markers.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lvm_data import storage
from lvm_data.curation.units import UnitCuration
from lvm_data.job.config import (
    JobConfig,
    JobConfigError,
    config_hash,
    job_to_dict,
    output_config,
    sentence_sources,
    shard_size_of,
    with_resolved,
)
from lvm_data.job.heartbeat import remove_run_folder
from lvm_data.job.plan import ReadUnit, ResumeError, SourcePlan, WorkUnit, check_sources, plan_source, with_committed
from lvm_data.job.staging import staged_units
from lvm_data.job.steps import Selection, SourceRuntime, make_runtime
from lvm_data.media.contract import DecodeSettings
from lvm_data.shards import layout
from lvm_data.shards.card import write_job_card
from lvm_data.shards.manifest import build_manifest, read_manifest, write_manifest
from lvm_data.shards.reader import list_markers, read_parquet
from lvm_data.shards.writer import ShardInfo, UnitCommit

if TYPE_CHECKING:  # lvm_data.tokenizer loads torch, which this module's readers need not
    from lvm_data.tokenizer.tokenizer import Tokenizer


@dataclass(frozen=True)
class TokenizerInfo:
    uri: str
    format: str
    fingerprint: str
    codebook_size: int
    tokens_per_image: int
    image_size: int
    device: str
    dtype: str

    @classmethod
    def of(cls, tokenizer: Tokenizer, device: str) -> TokenizerInfo:
        return cls(
            tokenizer.name,
            tokenizer.format,
            tokenizer.fingerprint,
            tokenizer.codebook_size,
            tokenizer.tokens_per_image,
            tokenizer.image_size,
            device,
            tokenizer.dtype,
        )


@dataclass(frozen=True)
class RunContext:
    """What every worker needs, picklable: the resolved job, its hash, the tokenizer facts, grouping."""

    job: JobConfig
    config_hash: str
    tokenizer: TokenizerInfo
    buckets: dict[str, int]  # source -> number of write buckets (0: the template builds items alone)
    processes_per_machine: int = 1  # SDK worker processes sharing a machine's cores (decode workers: auto)
    run_id: str = ""  # one per open_run: workers keep one executor per run

    @property
    def out(self) -> str:
        return self.job.output

    def settings(self) -> DecodeSettings:
        assert self.job.image_size is not None, "the context holds the resolved job (with_resolved)"
        return DecodeSettings(
            self.job.image_size, self.job.resize, self.job.max_pixels, self.job.jpeg_draft, self.job.max_item_bytes
        )

    def runtime(self, source: str, index: bool = True) -> SourceRuntime:
        """The source's reader, template and filters; `index`: use the job's image dedup index."""
        n = self.buckets.get(source, 0)
        return make_runtime(self.job, self.job.source(source), grouped=n > 0, n_buckets=n, index=index)

    def unit_curation(self, source: str, removed=(), signatures=()) -> UnitCuration | None:
        """What a unit of `source` commits for curation (None when the source lists no filters)."""
        filters = self.job.curation.of(source)
        if not filters.any:
            return None
        return UnitCuration(list(removed), list(signatures), pooled=filters.sentences)

    @functools.cached_property
    def pooled_sources(self) -> frozenset[str]:
        return frozenset(sentence_sources(self.job))

    def pooled(self, source: str) -> bool:
        """Whether `source` takes part in token-space dedup (its units are staged, then decided together)."""
        return source in self.pooled_sources

    def unit_commit(self, source: str, unit: str, spec_digest: str) -> UnitCommit:
        info = ShardInfo(
            self.tokenizer.fingerprint, self.tokenizer.codebook_size, self.tokenizer.tokens_per_image, self.config_hash
        )
        return UnitCommit(self.out, source, unit, spec_digest, info)


@dataclass
class Run:
    context: RunContext
    plans: dict[str, SourcePlan]
    selections: dict[str, Selection]
    retry: bool = False
    started: str = ""

    def read_units(self) -> list[ReadUnit]:
        """Units to read this run, in plan order."""
        out = []
        for name, plan in self.plans.items():
            wanted = self.selections[name].units
            if plan.grouped:
                out += list(plan.read_units) if wanted else []
            else:
                out += [r for r in plan.read_units if r.unit.id in wanted]
        return out

    def plain_units(self) -> list[WorkUnit]:
        """Work units of the sources whose template builds items alone: one per read unit this run writes."""
        return [
            WorkUnit(name, r.unit.id, plan.digests[r.unit.id], (r,))
            for name, plan in self.plans.items()
            if not plan.grouped
            for r in plan.read_units
            if r.unit.id in self.to_process(name)
        ]

    def to_process(self, source: str) -> frozenset[str]:
        """Write units of `source` this run tokenizes: the selected ones, less those staged already."""
        return self.selections[source].units - self.plans[source].staged

    def grouped_read_units(self) -> list[ReadUnit]:
        """Read units of grouping sources with a bucket to write: their refs say which buckets they feed."""
        return [
            r for name, plan in self.plans.items() if plan.grouped and self.to_process(name) for r in plan.read_units
        ]

    def bucket_units(self, fed: dict[tuple[str, str], list[ReadUnit]]) -> list[WorkUnit]:
        """A work unit per bucket this run writes, from (source, bucket) -> the read units with items in it
        (a bucket no item lands in still commits, empty)."""
        out = []
        for name, plan in self.plans.items():
            if plan.grouped:
                out += [
                    plan.bucket_unit(bucket, fed.get((name, bucket), ()))
                    for bucket in plan.write_units
                    if bucket in self.to_process(name)
                ]
        return out

    def staged_units(self) -> list[tuple[str, str, str]]:
        """(source, unit, spec digest) of every unit of a token-space dedup source that this run commits: after
        the tokenizing pipeline each is staged and waits for the pool's decision."""
        return [(name, unit, digest) for (name, unit), digest in self.seeds() if self.context.pooled(name)]

    def merges(self, source: str, unit: str) -> bool:
        """Whether committing `unit` keeps part of its committed files (retry-failed redoes some of its keys)."""
        return self.retry and self.selections[source].merges(unit)

    def merged_units(self) -> frozenset[tuple[str, str]]:
        """(source, unit) of every unit whose commit keeps part of its committed files."""
        return frozenset(
            (name, unit)
            for name, selection in self.selections.items()
            for unit in selection.units
            if self.merges(name, unit)
        )

    def kept_markers(self) -> list[dict]:
        """The output's markers, less those of the committed units this run produces whole (retry-failed's rebuilt
        units): their files are replaced, so their old sentences take no part in token-space dedup."""
        markers = list_markers(self.context.out)
        if not self.retry:
            return markers
        return [
            m
            for m in markers
            if m["source"] not in self.selections
            or m["unit"] not in self.selections[m["source"]].units
            or self.merges(m["source"], m["unit"])
        ]

    def seeds(self) -> list[tuple[tuple[str, str], str]]:
        """((source, write unit), spec digest) for every unit this run commits (empty ones included)."""
        return [
            ((name, unit), plan.digests[unit])
            for name, plan in self.plans.items()
            for unit in plan.write_units
            if unit in self.selections[name].units
        ]


def open_run(job: JobConfig, tokenizer: Tokenizer, *, retry: bool = False) -> Run:
    """Plan `job` against what its output holds. `tokenizer` is a loaded Tokenizer (facts and fingerprint)."""
    if job.image_size not in (None, tokenizer.image_size):
        raise JobConfigError(
            f"image_size {job.image_size} does not match the tokenizer {tokenizer.name}, which "
            f"takes {tokenizer.image_size}x{tokenizer.image_size} images; remove image_size from "
            "the job file"
        )
    job = with_resolved(job, tokenizer.image_size, tokenizer.tokens_per_image)
    digest = config_hash(job, tokenizer.fingerprint)
    _check_manifest(job.output, digest)
    plans, buckets, changed = {}, {}, {}
    markers = list_markers(job.output)
    check_sources(markers, [src.name for src in job.sources], job.output)
    for src in job.sources:
        rt = make_runtime(job, src)
        plan = plan_source(src.name, rt.source, rt.template, limit=job.limit, shard_size=shard_size_of(job, src))
        own = [m for m in markers if m["source"] == src.name]
        if retry:  # the repaired files of failed items changed: their units are accepted, and redone whole
            plan, changed[src.name] = committed_for_retry(plan, own, digest, job.output)
        else:
            plan = with_committed(plan, own, digest, job.output)
        if not retry and src.name in sentence_sources(job):  # a retry restages what it redoes
            pending = {unit: plan.digests[unit] for unit in plan.pending}
            plan = dataclasses.replace(plan, staged=frozenset(staged_units(job.output, src.name, pending, digest)))
        plans[src.name] = plan
        buckets[src.name] = plan.n_buckets
    context = RunContext(job, digest, TokenizerInfo.of(tokenizer, job.device), buckets, run_id=uuid.uuid4().hex)
    selections = {
        name: retry_selection(job.output, p, changed[name]) if retry else Selection(frozenset(p.pending))
        for name, p in plans.items()
    }
    return Run(context, plans, selections, retry, datetime.now(UTC).isoformat(timespec="seconds"))


def _check_manifest(out: str, digest: str) -> None:
    manifest = read_manifest(out)
    if manifest is not None and manifest["job"]["config_hash"] != digest:
        raise ResumeError(
            f"{out}: this output was written by another job configuration (config hash "
            f"{manifest['job']['config_hash']} vs {digest}); use a new output folder"
        )


UNREADABLE_KEYS = ("#unreadable", "#<unreadable>")  # key suffixes of a failed row that stands for a whole
# read unit (lvm_data.job.steps: a unit the source cannot read; webdataset: a tar that cannot be opened)


def committed_for_retry(
    plan: SourcePlan, markers: list[dict], config_hash: str, out: str
) -> tuple[SourcePlan, frozenset[str]]:
    """For retry-failed: the plan with its committed units, and those of them whose inputs changed since they were
    committed (files repaired in place: another size or modification time). A changed unit with failed items is
    accepted and redone whole, since which of its files changed is not known; a grouping source's buckets share
    one digest, so when it changed and any bucket has failed items, every bucket is. A changed unit without
    failed items (or another job configuration, or a unit this plan does not have) is refused as on any run."""
    failed = {m["unit"] for m in markers if m["counts"]["failed"]}
    changed = set()
    for marker in markers:
        if marker.get("config_hash") != config_hash or marker["unit"] not in plan.digests:
            continue  # with_committed below names the problem
        try:
            with_committed(plan, [marker], config_hash, out)
        except ResumeError:
            if failed if plan.grouped else marker["unit"] in failed:
                changed.add(marker["unit"])
            else:
                raise
    plan = with_committed(plan, [m for m in markers if m["unit"] not in changed], config_hash, out)
    return dataclasses.replace(plan, committed=plan.committed | changed), frozenset(changed)


def retry_selection(out: str, plan: SourcePlan, changed: frozenset[str] = frozenset()) -> Selection:
    """Units with failed ledger rows, and per unit its failed and its known keys.

    A grouping template's bucket with a failed item is redone whole (no `retry` entry): its groups are rebuilt
    from all their items as a clean run builds them (the items left over beside a failed one may now fill a
    sentence, and the shuffle of a group depends on all its members), and its new files replace the old ones.
    Other buckets keep their files: a group never spans buckets. A failed row that stands for a whole unreadable
    read unit redoes every bucket of the source, since that unit's items may land in any of them. `changed`
    units (`committed_for_retry`: their inputs changed) are redone whole too.
    """
    if plan.pending:
        raise ResumeError(
            f"{out}: source {plan.name} has {len(plan.pending)} uncommitted units; finish the job "
            f"with `lvm-data run {layout.join(out, layout.JOB_FILE)}` before retrying failed items"
        )
    retry, whole = {}, set()
    for marker in list_markers(out, plan.name):
        if marker["counts"]["failed"] == 0:
            continue
        ledger = read_parquet(layout.join(out, marker["ledger_file"]), columns=["key", "status"]).to_pylist()
        failed = frozenset(r["key"] for r in ledger if r["status"] == "failed")
        if marker["unit"] in changed:
            whole.add(marker["unit"])
        elif not plan.grouped:
            retry[marker["unit"]] = (failed, frozenset(r["key"] for r in ledger))
        elif any(key.endswith(UNREADABLE_KEYS) for key in failed):
            whole.update(plan.write_units)
        else:
            whole.add(marker["unit"])
    return Selection(frozenset(retry) | frozenset(whole) | changed, retry)


def finish_run(run: Run, runner: str) -> dict:
    """Write the manifest from every marker in the output (this run's and earlier runs') and return it."""
    ctx = run.context
    job = ctx.job
    markers = list_markers(job.output)
    used = sorted({d for m in markers for d in m.get("devices", [])})
    tokenizer = {
        **dataclasses.asdict(ctx.tokenizer),
        "requested_device": job.device,
        "requested_dtype": job.dtype,
        "device": ",".join(used) or job.device,
    }  # where encoding really ran (never silently another)
    manifest = build_manifest(
        job={"name": job.name, "config_hash": ctx.config_hash, "config": output_config(job), "run": job_to_dict(job)},
        tokenizer=tokenizer,
        runner=runner,
        started=run.started,
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        markers=markers,
        sources=[s.name for s in job.sources],
    )
    write_job_card(job.output, job.name, [s.name for s in job.sources])  # README.md: load_dataset(OUT)
    write_manifest(job.output, manifest)
    remove_run_folder(job.output, ctx.run_id)  # the executors' in-flight progress files
    return manifest


def save_job_file(out: str, text: str) -> None:
    """Copy the job file as run to OUT/job.yaml."""
    storage.write_bytes(layout.join(out, layout.JOB_FILE), text.encode())


def remove_stale_temporaries(out: str) -> int:
    """Delete '.tmp-' files a killed run left (invisible to readers, but they take space). One run per output."""
    stale = [uri for uri in storage.list_files(out) if uri.rsplit("/", 1)[-1].startswith(".tmp-")]
    for uri in stale:
        storage.delete(uri)
    return len(stale)
