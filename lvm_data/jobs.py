"""A job run on the driver, runner-agnostic: open (tokenizer facts, config hash, plan, resume
checks), then any executor (the Beam pipeline, or the plain loop of the benchmark) processes
`read_units()` and commits `seeds()`, then `finish_run` writes the manifest from the markers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime

from lvm_data import storage
from lvm_data.config import (
    JobConfig,
    JobConfigError,
    config_hash,
    job_to_dict,
    output_config,
    shard_size_of,
    with_resolved,
)
from lvm_data.curation.config import parse_filters, sentence_sources
from lvm_data.curation.units import UnitCuration
from lvm_data.media.decode import DecodeSettings
from lvm_data.plan import ReadUnit, ResumeError, SourcePlan, plan_source, with_committed
from lvm_data.process import Selection, SourceRuntime, make_runtime
from lvm_data.shards import layout
from lvm_data.shards.manifest import build_manifest, read_manifest, write_manifest
from lvm_data.shards.reader import list_markers, read_parquet
from lvm_data.shards.writer import ShardInfo, UnitCommit


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
    def of(cls, tokenizer, device: str) -> TokenizerInfo:
        return cls(tokenizer.name, tokenizer.format, tokenizer.fingerprint, tokenizer.codebook_size,
                   tokenizer.tokens_per_image, tokenizer.image_size, device, tokenizer.dtype)


@dataclass(frozen=True)
class RunContext:
    """What every worker needs, picklable: the resolved job, its hash, the tokenizer facts, grouping."""

    job: JobConfig
    config_hash: str
    tokenizer: TokenizerInfo
    buckets: dict[str, int]  # source -> number of write buckets (0: the template builds items alone)

    @property
    def out(self) -> str:
        return self.job.output

    def settings(self) -> DecodeSettings:
        return DecodeSettings(self.job.image_size, self.job.resize, self.job.max_pixels)

    def runtime(self, source: str, index: bool = True) -> SourceRuntime:
        """The source's reader, template and filters; `index`: use the job's image dedup index."""
        n = self.buckets.get(source, 0)
        return make_runtime(self.job, self.job.source(source), grouped=n > 0, n_buckets=n, index=index)

    def unit_curation(self, source: str, removed=(), signatures=()) -> UnitCuration | None:
        """What a unit of `source` commits for curation (None when the source lists no filters)."""
        filters = parse_filters(self.job.source(source).filters)
        if not filters.any:
            return None
        return UnitCuration(list(removed), list(signatures), pooled=filters.sentences)

    def unit_commit(self, source: str, unit: str, spec_digest: str) -> UnitCommit:
        info = ShardInfo(self.tokenizer.fingerprint, self.tokenizer.codebook_size, self.tokenizer.tokens_per_image,
                         self.config_hash)
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

    def only(self, units: set[tuple[str, str]]) -> Run:
        """This run restricted to some of its write units (one wave of the embedded runner)."""
        selections = {name: dataclasses.replace(sel, units=frozenset(u for s, u in units if s == name) & sel.units)
                      for name, sel in self.selections.items()}
        return dataclasses.replace(self, selections=selections)

    def wave_units(self) -> tuple[list[tuple[tuple[str, str], int]], list[tuple[str, str]]]:
        """(units of plain sources with their estimated items, in plan order; write units of grouped sources).

        Grouped sources cannot be split: any item may land in any bucket, so their units go in one wave.
        Neither can sources in a token-space dedup pool: every sentence of the pool is decided together.
        """
        plain, grouped = [], []
        pooled = set(sentence_sources(self.context.job))
        for name, plan in self.plans.items():
            wanted = self.selections[name].units
            if plan.grouped or name in pooled:
                grouped += [(name, u) for u in plan.write_units if u in wanted]
                continue
            shard = shard_size_of(self.context.job, self.context.job.source(name))
            plain += [((name, r.unit.id), r.max_items or r.unit.n_items or shard) for r in plan.read_units
                      if r.unit.id in wanted]
        return plain, grouped

    def seeds(self) -> list[tuple[tuple[str, str], str]]:
        """((source, write unit), spec digest) for every unit this run commits (empty ones included)."""
        return [((name, unit), plan.digests[unit]) for name, plan in self.plans.items()
                for unit in plan.write_units if unit in self.selections[name].units]


def open_run(job: JobConfig, tokenizer, *, retry: bool = False) -> Run:
    """Plan `job` against what its output holds. `tokenizer` is a loaded Tokenizer (facts and fingerprint)."""
    if job.image_size not in (None, tokenizer.image_size):
        raise JobConfigError(f"image_size {job.image_size} does not match the tokenizer {tokenizer.name}, which "
                             f"takes {tokenizer.image_size}x{tokenizer.image_size} images; remove image_size from "
                             "the job file")
    job = with_resolved(job, tokenizer.image_size)
    digest = config_hash(job, tokenizer.fingerprint)
    _check_manifest(job.output, digest)
    plans, buckets = {}, {}
    markers = list_markers(job.output)
    for src in job.sources:
        rt = make_runtime(job, src)
        plan = plan_source(src.name, rt.source, rt.template, limit=job.limit,
                           shard_size=shard_size_of(job, src))
        plans[src.name] = with_committed(plan, [m for m in markers if m["source"] == src.name], digest, job.output)
        buckets[src.name] = plan.n_buckets
    context = RunContext(job, digest, TokenizerInfo.of(tokenizer, job.device), buckets)
    selections = {name: retry_selection(job.output, p) if retry else Selection(frozenset(p.pending))
                  for name, p in plans.items()}
    return Run(context, plans, selections, retry, datetime.now(UTC).isoformat(timespec="seconds"))


def _check_manifest(out: str, digest: str) -> None:
    manifest = read_manifest(out)
    if manifest is not None and manifest["job"]["config_hash"] != digest:
        raise ResumeError(f"{out}: this output was written by another job configuration (config hash "
                          f"{manifest['job']['config_hash']} vs {digest}); use a new output folder")


def retry_selection(out: str, plan: SourcePlan) -> Selection:
    """Units with failed ledger rows, and per unit its failed and its known keys."""
    if plan.pending:
        raise ResumeError(f"{out}: source {plan.name} has {len(plan.pending)} uncommitted units; finish the job "
                          f"with `lvm-data run {layout.join(out, layout.JOB_FILE)}` before retrying failed items")
    retry = {}
    for marker in list_markers(out, plan.name):
        if marker["counts"]["failed"] == 0:
            continue
        ledger = read_parquet(layout.join(out, marker["ledger_file"]), columns=["key", "status"]).to_pylist()
        failed = frozenset(r["key"] for r in ledger if r["status"] == "failed")
        retry[marker["unit"]] = (failed, frozenset(r["key"] for r in ledger))
    return Selection(frozenset(retry), retry)


def finish_run(run: Run, runner: str) -> dict:
    """Write the manifest from every marker in the output (this run's and earlier runs') and return it."""
    ctx = run.context
    job = ctx.job
    markers = list_markers(job.output)
    used = sorted({d for m in markers for d in m.get("devices", [])})
    tokenizer = {**dataclasses.asdict(ctx.tokenizer), "requested_device": job.device, "requested_dtype": job.dtype,
                 "device": ",".join(used) or job.device}  # where encoding really ran (never silently another)
    manifest = build_manifest(
        job={"name": job.name, "config_hash": ctx.config_hash, "config": output_config(job), "run": job_to_dict(job)},
        tokenizer=tokenizer, runner=runner, started=run.started,
        finished=datetime.now(UTC).isoformat(timespec="seconds"), markers=markers,
        sources=[s.name for s in job.sources])
    write_manifest(job.output, manifest)
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


FIRST_WAVE_ITEMS = 256  # a small job runs as one wave; a big one measures its rate on this many items


def next_wave(units: list[tuple[tuple[str, str], int]], rate: float | None, seconds: float, first: int,
              first_items: int = FIRST_WAVE_ITEMS) -> int:
    """How many of `units` the next wave takes: while the rate is unknown, at least `first` units (one per
    worker) and `first_items` items; then as many as `rate` items/s process in about `seconds` (at least one)."""
    if rate is None:
        n, items = 0, 0
        while n < len(units) and (n < first or items < first_items):
            items += units[n][1]
            n += 1
        return n
    budget, n = rate * seconds, 0
    for _unit, items in units:
        if n and budget < items:
            break
        budget -= items
        n += 1
    return n
