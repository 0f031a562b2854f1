"""The main job as a Beam pipeline (DESIGN "Pipeline"): thin DoFns around lvm_data.process.

  PlanUnits -> SpreadUnits -> ReadItems -+-> DecodeBuild ----------------------+-> Tokenize (RunInference)
                                         +-> GroupItems -> DecodeBuildGroups --+
  PendingUnits + ReadItems[expected] + events + rows -> JoinByUnit -> WriteUnits (files, ledger, marker)

Curation (pipelines/curation.py): DecodeBuild runs each source's filters between decode and build; a
job with image dedup first builds its index (a pipeline of its own, once per output); token-space
dedup adds sentence removals and signatures to JoinByUnit.

Every step has a stable label; counters mirror the ledger: `lvm_data.<stage>` / `<status>_<reason>`.
"""

from __future__ import annotations

import contextlib
import time

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import RunInference
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from lvm_data import tokenizer as lvm_tokenizer
from lvm_data.config import JobConfig
from lvm_data.curation.config import parse_filters
from lvm_data.curation.report import write_report
from lvm_data.items import ItemRef
from lvm_data.jobs import (
    FIRST_WAVE_ITEMS,
    Run,
    RunContext,
    finish_run,
    next_wave,
    open_run,
    remove_stale_temporaries,
    save_job_file,
)
from lvm_data.process import finish_unit, group_key, prepare, read_items
from pipelines.curation import ensure_index, sentence_dedup
from pipelines.inference import TokenizerHandler

EMBEDDED = ("FnApiRunner", "DirectRunner")
WAVE_SECONDS = 120.0  # embedded runner: aim for a commit (and a progress step) about every two minutes


def _count(stage: str, name: str, n: int = 1) -> None:
    Metrics.counter(f"lvm_data.{stage}", name).inc(n)


class ReadItems(beam.DoFn):
    """ReadUnit -> ItemRefs (main: built alone; 'grouped': (group key, ref)); 'expected': (unit, key)."""

    def __init__(self, ctx: RunContext, selections):
        self.ctx, self.selections = ctx, selections

    def setup(self):
        self.runtimes = {s.name: self.ctx.runtime(s.name) for s in self.ctx.job.sources}

    def process(self, read_unit):
        rt = self.runtimes[read_unit.source]
        for ref in read_items(rt, read_unit, self.selections[read_unit.source]):
            _count("read", "items")
            yield beam.pvalue.TaggedOutput("expected", ((ref.source, ref.unit), ref.key))
            if rt.grouped:
                yield beam.pvalue.TaggedOutput("grouped", ((ref.source, group_key(rt, ref)), ref))
            else:
                yield ref


class DecodeBuild(beam.DoFn):
    """A ref, or (group key, refs) -> Pending sentences; 'events': ((source, unit), ItemEvent) of failures."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def setup(self):
        self.runtimes = {s.name: self.ctx.runtime(s.name) for s in self.ctx.job.sources}
        self.settings = self.ctx.settings()

    def process(self, element):
        refs = [element] if isinstance(element, ItemRef) else list(element[1])
        pendings, events = prepare(self.runtimes[refs[0].source], self.settings, refs)
        for event in events:
            _count("decode", f"{event.outcome.status.value}_{event.outcome.reason.value}")
            yield beam.pvalue.TaggedOutput("events", ((refs[0].source, refs[0].unit), event))
        _count("build", "sentences", len(pendings))
        yield from pendings


def unit_rows(tokenized):
    if tokenized.row is not None:
        yield (tokenized.source, tokenized.unit), tokenized.row


def unit_events(tokenized):
    _count("tokenize", "ok" if tokenized.row is not None else "failed_tokenize_error")
    for event in tokenized.events:
        yield (tokenized.source, tokenized.unit), event


class WriteUnit(beam.DoFn):
    """((source, unit), {seed, expected, events, rows}) -> the unit's marker, after its files."""

    def __init__(self, ctx: RunContext, merge: bool):
        self.ctx, self.merge = ctx, merge

    def process(self, element):
        (source, unit), parts = element
        seeds = list(parts["seed"])
        if not seeds:
            raise RuntimeError(f"unit {source}/{unit} received items but was not planned for this run (bug)")
        curation = self.ctx.unit_curation(source, parts.get("removed", ()), parts.get("signatures", ()))
        marker, tallies = finish_unit(self.ctx.unit_commit(source, unit, seeds[0]), list(parts["expected"]),
                                      list(parts["events"]), list(parts["rows"]), merge=self.merge,
                                      curation=curation)
        _count("write", "units")
        for name, n in sorted(tallies.items()):
            _count("ledger", name, n)
        yield marker


def build(p: beam.Pipeline, run: Run):
    """Add the job's steps to `p`; returns the PCollection of committed unit markers."""
    ctx = run.context
    job = ctx.job
    seeds = p | "PendingUnits" >> beam.Create(run.seeds())
    items = (p | "PlanUnits" >> beam.Create(run.read_units())
             | "SpreadUnits" >> beam.Reshuffle()
             | "ReadItems" >> beam.ParDo(ReadItems(ctx, run.selections)).with_outputs("expected", "grouped",
                                                                                     main="single"))
    singles = (items.single | "SpreadItems" >> beam.Reshuffle()  # decode in parallel, not one thread per unit
               | "DecodeBuild" >> beam.ParDo(DecodeBuild(ctx)).with_outputs("events", main="sentences"))
    groups = (items.grouped | "GroupItems" >> beam.GroupByKey()
              | "DecodeBuildGroups" >> beam.ParDo(DecodeBuild(ctx)).with_outputs("events", main="sentences"))
    handler = TokenizerHandler(job.tokenizer, device=job.device, dtype=job.dtype, frames_per_batch=job.batch_size,
                               compile=job.compile)
    tokenized = ((singles.sentences, groups.sentences) | "AllSentences" >> beam.Flatten()
                 | "Tokenize" >> RunInference(handler))
    rows = tokenized | "UnitRows" >> beam.FlatMap(unit_rows)
    events = ((singles.events, groups.events, tokenized | "UnitEvents" >> beam.FlatMap(unit_events))
              | "AllEvents" >> beam.Flatten())
    curated = sentence_dedup(p, run, tokenized)
    return ({"seed": seeds, "expected": items.expected, "events": events, "rows": rows, **curated}
            | "JoinByUnit" >> beam.CoGroupByKey()
            | "WriteUnits" >> beam.ParDo(WriteUnit(ctx, merge=run.retry)))


def pipeline_options(beam_args: list[str]) -> tuple[object, PipelineOptions, str]:
    """(runner, options, runner label). The embedded default is Beam's FnApiRunner, named explicitly so
    that DirectRunner never tries to download Prism; `--direct_running_mode multi_processing
    --direct_num_workers N` make it use N worker processes."""
    options = PipelineOptions(beam_args)
    name = options.view_as(StandardOptions).runner or "FnApiRunner"
    if name.split(".")[-1] not in EMBEDDED:
        return name, options, name
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    direct = options.view_as(DirectOptions)
    mode = direct.direct_running_mode or "in_memory"
    workers = direct.direct_num_workers or 1
    label = f"FnApiRunner({mode}" + (f", {workers} workers)" if mode != "in_memory" else ")")
    return FnApiRunner(), options, label


def execute(run: Run, beam_args: list[str], wave_seconds: float = WAVE_SECONDS, clock=time.monotonic,
            first_wave_items: int = FIRST_WAVE_ITEMS) -> str:
    """Run the job's pipeline to completion; returns the runner label for the manifest.

    On the embedded runner the pending units run in waves, one pipeline each, sized to take about
    `wave_seconds` from the measured rate: a GroupByKey stage only starts when everything before it is
    done, so waves are what lets units commit (and progress, and a kill lose little) during a long job.
    Other runners get the whole job as one pipeline. A job with image dedup builds its index first.
    """
    runner, options, label = pipeline_options(beam_args)
    ensure_index(run, runner, options, label)
    if isinstance(runner, str):
        _run_pipeline(run, runner, options)
        return label
    plain, grouped = run.wave_units()
    first, rate = options.view_as(DirectOptions).direct_num_workers or 1, None
    while plain or grouped:
        n = next_wave(plain, rate, wave_seconds, first, first_wave_items)
        wave, plain = plain[:n], plain[n:]
        units = {key for key, _ in wave} | (set(grouped) if not plain else set())
        grouped = grouped if plain else []
        start = clock()
        _run_pipeline(run.only(units), *pipeline_options(beam_args)[:2])
        rate = max(1, sum(items for _, items in wave)) / max(clock() - start, 1e-3)
    return label


def _run_pipeline(run: Run, runner, options: PipelineOptions) -> None:
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
        with watch(run) if watch else contextlib.nullcontext():
            label = execute(run, beam_args)
    manifest = finish_run(run, label)
    if any(parse_filters(s.filters).any for s in job.sources):
        write_report(job.output, tokenizer=tokenizer)
    return manifest


def plan_only(job: JobConfig) -> Run:
    """The Run a job would execute (for --dry-run): tokenizer loaded on CPU, nothing written."""
    return open_run(job, lvm_tokenizer.load(job.tokenizer, device="cpu", dtype=job.dtype))
