"""Execute a planned job in this process, without Beam: the plain loop `lvm-data bench pipeline`
compares the pipeline with. Same stages, same functions (read_items, prepare, tokenize, finish_unit),
same output files; units are processed one after the other.

Curation runs the same plain functions in-process: the image dedup index is built first when the job
needs it (lvm_data.job.dedup_index.build_local), and units of token-space dedup sources are committed
after every sentence of the pool is tokenized and decided (lvm_data.curation.sentence_dedup.decide).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from lvm_data.curation.sentence_dedup import (
    SentenceRemoval,
    SentenceSig,
    committed_files,
    decide,
    read_committed,
    sentence_settings,
    sign_row,
)
from lvm_data.job import dedup_index as curation_index
from lvm_data.job.config import batch_size_for
from lvm_data.job.runs import Run
from lvm_data.job.steps import Pending, finish_unit, group_key, prepare, read_items, tokenize
from lvm_data.shards.ledger import ItemEvent
from lvm_data.shards.writer import SentenceRow


@dataclass
class UnitWork:
    expected: list[str] = field(default_factory=list)
    events: list[ItemEvent] = field(default_factory=list)
    rows: list[SentenceRow] = field(default_factory=list)
    signatures: list[SentenceSig] = field(default_factory=list)
    removed: list[SentenceRemoval] = field(default_factory=list)


class LocalExecutor:
    """Runs `run` with a loaded `tokenizer`; `execute()` commits every unit the run seeds."""

    def __init__(self, run: Run, tokenizer, frames_per_batch: int | None = None):
        self.run, self.tokenizer = run, tokenizer
        self.ctx = run.context
        self.frames = frames_per_batch or batch_size_for(self.ctx.job, tokenizer.runs_on())
        self.settings = self.ctx.settings()
        self.runtimes = {name: self.ctx.runtime(name) for name in run.plans}
        self.work: dict[tuple[str, str], UnitWork] = defaultdict(UnitWork)
        self.digests = dict(run.seeds())
        self.sentences = sentence_settings(self.ctx.job.curation)

    def execute(self) -> list[dict]:
        if curation_index.needs_index(self.run):
            curation_index.build_local(self.run)
        markers, groups = [], defaultdict(list)
        for read_unit in self.run.read_units():
            rt = self.runtimes[read_unit.source]
            pendings = []
            for ref in read_items(rt, read_unit, self.run.selections[read_unit.source]):
                self.work[(ref.source, ref.unit)].expected.append(ref.key)
                if rt.grouped:
                    groups[(ref.source, group_key(rt, ref))].append(ref)
                else:
                    pendings += self._prepare(rt, [ref])
            self._tokenize(pendings)
            key = (read_unit.source, read_unit.unit.id)
            if not rt.grouped and read_unit.source not in self.sentences.sources and key in self.digests:
                markers.append(self._commit(*key))
        pendings = [p for (src, _), refs in sorted(groups.items()) for p in self._prepare(self.runtimes[src], refs)]
        self._tokenize(pendings)
        self._decide_sentences()
        done = {(m["source"], m["unit"]) for m in markers}
        return markers + [self._commit(s, u) for (s, u) in self.digests if (s, u) not in done]

    def _prepare(self, rt, refs) -> list[Pending]:
        pendings, events = prepare(rt, self.settings, refs)
        self.work[(refs[0].source, refs[0].unit)].events.extend(events)
        return pendings

    def _tokenize(self, pendings: list[Pending]) -> None:
        batch, frames = [], 0
        for p in pendings + [None]:
            if p is None or (batch and frames + p.n_images > self.frames):
                for t in tokenize(self.tokenizer, batch):
                    self._collect(t)
                batch, frames = [], 0
            if p is not None:
                batch.append(p)
                frames += p.n_images

    def _collect(self, t) -> None:
        work = self.work[(t.source, t.unit)]
        work.events.extend(t.events)
        if t.row is not None:
            work.rows.append(t.row)
            sig = sign_row(self.sentences, t.source, t.unit, t.row)
            if sig is not None:
                work.signatures.append(sig)

    def _decide_sentences(self) -> None:
        """Token-space dedup over this run's pooled sentences and the committed units' signatures."""
        new = [s for work in self.work.values() for s in work.signatures]
        if not new:
            return
        entries = committed_files(self.ctx.out, self.run.kept_markers(), self.sentences)
        committed = [sig for entry in entries for sig in read_committed(entry)]
        for removal in decide(new + committed, self.sentences):
            self.work[(removal.source, removal.unit)].removed.append(removal)

    def _commit(self, source: str, unit: str) -> dict:
        work = self.work.pop((source, unit), UnitWork())
        marker, _tallies = finish_unit(
            self.ctx.unit_commit(source, unit, self.digests[(source, unit)]),
            work.expected,
            work.events,
            work.rows,
            merge=self.run.merges(source, unit),
            curation=self.ctx.unit_curation(source, work.removed, work.signatures),
        )
        return marker
