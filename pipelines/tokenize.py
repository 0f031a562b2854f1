"""The main job as a Beam pipeline (DESIGN "Pipeline"): Beam distributes work units, nothing else.

  PlainUnits -------------------------------------------------------------------------------+
  GroupedReadUnits -> SpreadReadUnits -> ListBuckets -+-> GroupBuckets -> BucketUnits -------+-> SpreadUnits
  PendingBuckets -------------------------------------+                                          -> ProcessUnits

ProcessUnits hands each work unit to its worker process's executor (lvm_data.job.executor), where the
unit is read, decoded, built, encoded and written, the stages overlapping and batches of frames spanning
units, and where it commits (files, then marker) the moment it is done, on every runner. ListBuckets
reads item references only, to find the buckets of a grouping template's items: its GroupByKey groups
read-unit descriptors, before anything is decoded. No media bytes or decoded frames cross the graph, and
nothing groups after decoding (tests/pipelines/test_graph.py checks both).

Around it: the image dedup index first (pipelines/curation.py, a pass of its own), and for sources in a
token-space dedup pool, the decision pass over their staged units afterwards (pipelines/curation.py).

Counters mirror the ledger, from each committed unit's marker: `lvm_data.read` / `items`,
`lvm_data.build` / `sentences`, `lvm_data.write` / `units`, `lvm_data.ledger` / `<status>_<reason>`.
"""

from __future__ import annotations

import contextlib
import dataclasses

import apache_beam as beam
from apache_beam.metrics.metric import Metrics
from apache_beam.options.pipeline_options import (
    DebugOptions,
    DirectOptions,
    PipelineOptions,
    PortableOptions,
    StandardOptions,
)
from apache_beam.runners.runner import PipelineRunner
from apache_beam.transforms.window import GlobalWindows

from lvm_data import tokenizer as lvm_tokenizer
from lvm_data.curation.report import write_report
from lvm_data.job.config import JobConfig
from lvm_data.job.executor import Batch, release_executor, shared_executor
from lvm_data.job.heartbeat import remove_run_folder
from lvm_data.job.runs import Run, RunContext, finish_run, open_run, remove_stale_temporaries, save_job_file
from lvm_data.job.steps import buckets_fed
from lvm_data.outcomes import Reason, status_of
from pipelines.curation import commit_staged, ensure_index

EMBEDDED = ("FnApiRunner", "DirectRunner")


def _count(stage: str, name: str, n: int = 1) -> None:
    Metrics.counter(f"lvm_data.{stage}", name).inc(n)


def count_marker(marker: dict) -> dict:
    """The counters of a committed unit (a staged one counts when the decision pass commits it)."""
    if marker.get("staged"):
        _count("stage", "units")
        return marker
    counts = marker["counts"]
    _count("read", "items", counts["inputs"])
    _count("build", "sentences", counts["sentences"])
    _count("write", "units")
    for reason, n in sorted(counts["reasons"].items()):
        _count("ledger", f"{status_of(Reason(reason)).value}_{reason}", n)
    return marker


class ListBuckets(beam.DoFn):
    """A grouping source's read unit -> ((source, bucket), read unit) for every bucket its items land in."""

    def __init__(self, ctx: RunContext, selections):
        self.ctx, self.selections = ctx, selections

    def setup(self):
        self.runtimes = {}

    def process(self, read_unit):
        if read_unit.source not in self.runtimes:
            self.runtimes[read_unit.source] = self.ctx.runtime(read_unit.source)
        for bucket in buckets_fed(self.runtimes[read_unit.source], read_unit, self.selections[read_unit.source]):
            yield (read_unit.source, bucket), read_unit


class BucketUnits(beam.DoFn):
    """((source, bucket), read units or None) -> the bucket's WorkUnit, for buckets this run encodes (None marks
    a bucket to write, so that one no item lands in still commits)."""

    def __init__(self, run: Run):
        self.plans = {name: plan for name, plan in run.plans.items() if plan.grouped}
        self.wanted = {name: run.to_process(name) for name in self.plans}

    def process(self, element):
        (source, bucket), read_units = element
        if bucket in self.wanted[source]:  # a bucket staged for token-space dedup is not encoded again
            yield self.plans[source].bucket_unit(bucket, [r for r in read_units if r is not None])


class ProcessUnits(beam.DoFn):
    """WorkUnit -> its marker, once committed by this process's executor (staged: a small record)."""

    def __init__(self, ctx: RunContext, selections, merge: bool):
        self.ctx, self.selections, self.merge = ctx, selections, merge

    def setup(self):
        self.executor = shared_executor(self.ctx, self.selections, self.merge)

    def start_bundle(self):
        self.batch = Batch()

    def process(self, work):
        self.executor.submit(work, self.batch)  # blocks while the executor is full
        for marker in self.batch.done():
            yield count_marker(marker)

    def finish_bundle(self):
        for marker in self.batch.wait():  # raises UnitFailed if a unit of the bundle could not commit
            yield GlobalWindows.windowed_value(count_marker(marker))

    def teardown(self):
        release_executor(self.executor)


def build(p: beam.Pipeline, run: Run):
    """Add the job's steps to `p`; returns the PCollection of committed unit markers."""
    ctx = run.context
    units = [p | "PlainUnits" >> beam.Create(run.plain_units())]
    grouped = run.grouped_read_units()
    if grouped:
        listed = (
            p
            | "GroupedReadUnits" >> beam.Create(grouped)
            | "SpreadReadUnits" >> beam.Reshuffle()
            | "ListBuckets" >> beam.ParDo(ListBuckets(ctx, run.selections))
        )
        pending = p | "PendingBuckets" >> beam.Create(
            [
                ((name, bucket), None)
                for name, plan in run.plans.items()
                if plan.grouped
                for bucket in plan.write_units
                if bucket in run.to_process(name)
            ]
        )
        units.append(
            (listed, pending)
            | "AllBuckets" >> beam.Flatten()
            | "GroupBuckets" >> beam.GroupByKey()
            | "BucketUnits" >> beam.ParDo(BucketUnits(run))
        )
    return (
        units
        | "AllUnits" >> beam.Flatten()
        | "SpreadUnits" >> beam.Reshuffle()
        | "ProcessUnits" >> beam.ParDo(ProcessUnits(ctx, run.selections, merge=run.retry))
    )


def pipeline_options(beam_args: list[str]) -> tuple[str | PipelineRunner, PipelineOptions, str]:
    """(runner, options, runner label). The embedded default is Beam's FnApiRunner, named explicitly so
    that DirectRunner never tries to download Prism; `--direct_running_mode multi_processing
    --direct_num_workers N` make it use N worker processes."""
    options = PipelineOptions(beam_args)
    name = options.view_as(StandardOptions).runner or "FnApiRunner"
    if name.split(".")[-1] not in EMBEDDED:
        return name, options, name
    from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiRunner

    direct = options.view_as(DirectOptions)
    mode = direct.direct_running_mode or "in_memory"
    workers = direct.direct_num_workers or 1
    label = f"FnApiRunner({mode}" + (f", {workers} workers)" if mode != "in_memory" else ")")
    return FnApiRunner(), options, label


def processes_per_machine(options: PipelineOptions) -> int:
    """SDK worker processes that share a machine's cores (each runs its own decode workers): the embedded
    runner's worker processes, the portable runner's `--sdk_worker_parallelism`, and on Dataflow one per
    vCPU unless `--experiments=no_use_multiple_sdk_containers` (0 stands for one per core)."""
    name = (options.view_as(StandardOptions).runner or "FnApiRunner").split(".")[-1]
    if name in EMBEDDED:
        direct = options.view_as(DirectOptions)
        return (direct.direct_num_workers or 1) if direct.direct_running_mode == "multi_processing" else 1
    if name == "DataflowRunner":
        experiments = options.view_as(DebugOptions).experiments or []
        return 1 if "no_use_multiple_sdk_containers" in experiments else 0
    return max(1, int(options.view_as(PortableOptions).sdk_worker_parallelism or 1))


def execute(run: Run, beam_args: list[str]) -> str:
    """Run the job: the image dedup index when it needs one, the tokenizing pipeline (units commit as they
    finish), then the decision pass of token-space dedup sources. Returns the runner label for the manifest."""
    runner, options, label = pipeline_options(beam_args)
    ensure_index(run, runner, options, label)
    ctx = dataclasses.replace(run.context, processes_per_machine=processes_per_machine(options))
    run = dataclasses.replace(run, context=ctx)
    if run.plain_units() or run.grouped_read_units():
        _run_pipeline(run, beam_args)
    if run.staged_units():
        commit_staged(run, *pipeline_options(beam_args)[:2])
    return label


def _run_pipeline(run: Run, beam_args: list[str]) -> None:
    runner, options, _label = pipeline_options(beam_args)
    with beam.Pipeline(runner=runner, options=options) as p:
        build(p, run)


def run_job(job: JobConfig, job_text: str | None, beam_args: list[str], *, retry: bool = False, watch=None) -> dict:
    """Plan, run and finish a job; returns the manifest. `job_text` (the job file as run) goes to OUT/job.yaml.

    `watch(run)`, when given, returns a context manager active while the pipeline runs (progress).
    With nothing left to do (every unit committed) no pipeline starts; the manifest is rewritten.
    A job with filters also gets its curation report in OUT/curation/ (lvm_data.curation.report).
    """
    tokenizer = lvm_tokenizer.load(job.tokenizer, device="cpu", dtype=job.dtype)
    run = open_run(job, tokenizer, retry=retry)
    if job_text is not None:
        save_job_file(job.output, job_text)
    remove_stale_temporaries(job.output)
    label = pipeline_options(beam_args)[2]
    if run.seeds():
        try:
            with watch(run) if watch else contextlib.nullcontext():
                label = execute(run, beam_args)
        except Exception:  # a storage fault or a bug: the executors' in-flight progress files go (best effort)
            with contextlib.suppress(OSError):
                remove_run_folder(job.output, run.context.run_id)
            raise
    manifest = finish_run(run, label)
    if job.curation.any:
        write_report(job.output, tokenizer=tokenizer)
    return manifest


def plan_only(job: JobConfig) -> Run:
    """The Run a job would execute (for --dry-run): tokenizer loaded on CPU, nothing written."""
    return open_run(job, lvm_tokenizer.load(job.tokenizer, device="cpu", dtype=job.dtype))
