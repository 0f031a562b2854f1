"""`run_audit(paths, config)`: audit one or many job outputs (local or gs://) into an `AuditResult`.

Order: list each output once; scan its sentence files (footers + small columns, in a thread pool);
scan its ledger files against the shards' id hashes; load the commits (manifest or markers); then
the checks that span files and outputs; finally `--deep` statistics and the `--target` comparison.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from lvm_data import storage
from lvm_data.audit import consistency, corpus
from lvm_data.audit.codebook import CodebookStats, CodeTally, duplicate_rows, summarize
from lvm_data.audit.files import Output, list_output
from lvm_data.audit.hashing import ColumnHashes
from lvm_data.audit.ledger import LedgerScan, scan_ledger_file
from lvm_data.audit.mixture import Target, compare
from lvm_data.audit.result import AuditResult, IoStats, count_rows, curation_rows, ledger_rows
from lvm_data.audit.sentences import SentenceScan, scan_sentence_file
from lvm_data.audit.violations import Findings
from lvm_data.determinism import digest
from lvm_data.progress import Meter, Report, silent
from lvm_data.shards import layout
from lvm_data.shards.timings import timings_total


@dataclass(frozen=True)
class AuditConfig:
    """deep: also read the tokens. ids: which units' sentence ids and ledger keys are read for the checks
    that need them (duplicate ids and keys, ledger ids missing from shards, orphan sentences): "all";
    "sample" (the default: all of an output under ID_SAMPLE_ABOVE bytes, else a seeded sample of whole
    units holding ID_SAMPLE_SHARE of its bytes, so the audit reads about 1 % of a corpus); "none" reads
    only footers and dictionary-encoded columns. True / False mean "all" / "none"; deep implies "all".
    target: mixture to compare with. workers: files read at once. max_examples: violations shown per
    kind (counts are always complete)."""

    deep: bool = False
    ids: str | bool = "sample"
    target: Target | None = None
    workers: int = 8
    max_examples: int = 20

    @property
    def id_mode(self) -> str:
        mode = {True: "all", False: "none"}.get(self.ids, self.ids) if isinstance(self.ids, bool) else self.ids
        if mode not in ID_MODES:
            raise ValueError(f"audit ids={self.ids!r}: use one of {', '.join(ID_MODES)}")
        return "all" if self.deep else mode

    @property
    def reads_ids(self) -> bool:
        return self.id_mode != "none"


ID_MODES = ("all", "sample", "none")
ID_SAMPLE_ABOVE = 64 << 20  # smaller outputs: every id is read (a few MB at most)
ID_SAMPLE_SHARE = 0.10  # ids and keys are ~8 % of single-image files: a 10 % sample reads ~0.8 % of the corpus


def id_sample(output: Output, mode: str) -> set[tuple[str, str]] | None:
    """The (source, unit) whose ids are read; None: every unit. The sample is whole units in an order
    seeded by their names (the same output gives the same sample) holding at most ID_SAMPLE_SHARE of the
    bytes (at least one unit)."""
    if mode == "all" or (mode == "sample" and output.total_bytes <= ID_SAMPLE_ABOVE):
        return None
    if mode == "none":
        return set()
    units = sorted(set(output.sentences) | set(output.ledger), key=lambda u: digest([f"{u[0]}/{u[1]}"]))
    chosen, size = set(), 0
    for unit in units:
        unit_size = sum(files[unit].size for files in (output.sentences, output.ledger) if unit in files)
        if chosen and size + unit_size > ID_SAMPLE_SHARE * output.total_bytes:
            continue
        chosen.add(unit)
        size += unit_size
    return chosen


@dataclass
class _Scanned:
    output: Output
    sentences: list[SentenceScan]
    ledgers: list[LedgerScan]
    commits: consistency.Commits
    id_units: set[tuple[str, str]] | None = None  # units whose ids were read (None: all)

    def with_ids(self, scans: list) -> list:
        """The scans of units whose ids were read."""
        return scans if self.id_units is None else [s for s in scans if (s.entry.source, s.entry.unit) in self.id_units]

    @property
    def bytes_read(self) -> int:
        return sum(s.bytes_read for s in [*self.sentences, *self.ledgers]) + self.commits.bytes_read


def run_audit(
    paths: list[str],
    config: AuditConfig = AuditConfig(),
    clock: Callable[[], float] = time.monotonic,
    report: Report = silent,
) -> AuditResult:
    """Audit the outputs at `paths`. Raises files.AuditPathError when a path is not a job output.
    `report` gets the progress of the file scans (lvm_data.progress)."""
    started = clock()
    roots = dict.fromkeys(p.rstrip("/") if storage.is_remote(p) else os.path.abspath(p) for p in paths)
    outputs = [list_output(root) for root in roots]
    files = sum(len(o.sentences) + len(o.ledger) for o in outputs)
    with (
        ThreadPoolExecutor(max_workers=max(1, config.workers)) as pool,
        Meter("audit", "files", files, report) as meter,
    ):

        def map_(fn, items):
            return pool.map(lambda item: _counted(fn, item, meter), items)

        scanned = [_scan_output(o, config, map_) for o in outputs]
    findings, notes = Findings(config.max_examples), []
    io = IoStats(
        files=sum(len(o.by_rel()) + (o.manifest is not None) for o in outputs),
        corpus_bytes=sum(o.total_bytes for o in outputs),
        bytes_read=sum(x.bytes_read for x in scanned),
    )
    for x in scanned:
        io.bytes_read += _check_output(x, config, findings, notes)
    if config.reads_ids:
        io.bytes_read += _check_corpus(scanned, findings)
    else:
        notes.append("id checks skipped (--no-ids): duplicate ids and keys, ledger ids missing from shards, orphans")
    sentences = [s for x in scanned for s in x.sentences]
    result = _result(outputs, scanned, config, findings, io)
    result.notes = notes + result.notes
    if config.deep:
        result.codebook, n = _codebook(sentences, result.tokenizers, config.max_examples)
        io.bytes_read += n
    if config.target is not None:
        result.mixture = compare(config.target, {r.source: r.tokens for r in result.sources})
    io.seconds = clock() - started
    return result


def _counted(fn: Callable, item, meter: Meter):
    """`fn(item)`, a sentence or ledger file's scan counted as one file done (marker reads are not counted)."""
    result = fn(item)
    if isinstance(result, (SentenceScan, LedgerScan)):
        meter.advance(1)
    return result


def _scan_output(output: Output, config: AuditConfig, map_: Callable) -> _Scanned:
    units = id_sample(output, config.id_mode)

    def reads(unit: tuple[str, str]) -> bool:
        return units is None or unit in units

    sentences = list(
        map_(lambda item: scan_sentence_file(item[1], deep=config.deep, ids=reads(item[0])), output.sentences.items())
    )
    shard_ids = np.sort(np.concatenate([s.id_hashes for s in sentences] or [np.zeros(0, np.uint64)]))
    ledgers = list(
        map_(
            lambda item: scan_ledger_file(item[1], shard_ids=shard_ids if reads(item[0]) else None),
            output.ledger.items(),
        )
    )
    return _Scanned(output, sentences, ledgers, consistency.load_commits(output, map_), units)


def _result(
    outputs: list[Output], scanned: list[_Scanned], config: AuditConfig, findings: Findings, io: IoStats
) -> AuditResult:
    """Count tables, ledger totals and tokenizers (whose violations join `findings`)."""
    sentences = [s for x in scanned for s in x.sentences]
    groups, sources, total = count_rows(sentences)
    tokenizer_rows, found = corpus.tokenizers(
        sentences, {x.output.root: x.commits.manifest for x in scanned if x.commits.manifest is not None}
    )
    findings.extend(found)
    notes = []
    unchecked = sum(s.range_unchecked for s in sentences)
    if unchecked:
        notes.append(
            f"{unchecked} row groups have no min/max statistics on tokens: their codes were not "
            "range-checked (run with --deep)"
        )
    return AuditResult(
        paths=[o.root for o in outputs],
        deep=config.deep,
        groups=groups,
        sources=sources,
        total=total,
        ledger=ledger_rows([s for x in scanned for s in x.ledgers]),
        tokenizers=tokenizer_rows,
        lengths=dict(sum((s.lengths for s in sentences), Counter())),
        findings=findings,
        io=io,
        notes=notes,
        target=config.target,
        curation=curation_rows(r for x in scanned for r in x.commits.records.values()),
        timings=timings_total([r for x in scanned for r in x.commits.records.values() if isinstance(r, dict)]),
    )


def _check_output(x: _Scanned, config: AuditConfig, findings: Findings, notes: list[str]) -> int:
    """Violations of one output (files, commits, manifest, orphans); returns the bytes re-read."""
    for scan in [*x.sentences, *x.ledgers]:
        findings.extend(scan.violations)
    findings.extend(x.commits.violations)
    findings.extend(consistency.check_units(x.output, x.commits, x.sentences, x.ledgers))
    findings.extend(consistency.check_manifest(x.commits, layout.join(x.output.root, layout.MANIFEST)))
    if not config.reads_ids:
        return 0
    if x.id_units is not None:
        units = len(set(x.output.sentences) | set(x.output.ledger))
        notes.append(
            f"{x.output.root}: ids and keys checked in {len(x.id_units)} of {units} units, a seeded sample "
            f"of {ID_SAMPLE_SHARE:.0%} of the bytes (audit --ids all checks every unit)"
        )
    ledgers = x.with_ids(x.ledgers)
    if not ledgers or not all(s.counted for s in ledgers):
        notes.append(f"{x.output.root}: orphan sentences not checked: its ledger is missing or unreadable")
        return 0
    found, bytes_read = corpus.orphan_sentences(x.with_ids(x.sentences), ledgers, findings.max_examples)
    findings.extend(found)
    return bytes_read


def _check_corpus(scanned: list[_Scanned], findings: Findings) -> int:
    """Duplicate sentence ids across everything, duplicate ledger keys per source; returns bytes re-read."""
    found_ids, n_ids = corpus.duplicate_ids([s for x in scanned for s in x.with_ids(x.sentences)])
    found_keys, n_keys = corpus.duplicate_keys([s for x in scanned for s in x.with_ids(x.ledgers)])
    findings.extend(found_ids + found_keys)
    return n_ids + n_keys


def _codebook(sentences: list[SentenceScan], tokenizer_rows: list, max_examples: int) -> tuple[CodebookStats, int]:
    """Deep statistics over every counted file; duplicate sentences are named by their ids."""
    tally, deep = CodeTally(), [s for s in sentences if s.codes is not None]
    for scan in deep:
        if scan.codes is not None:  # always, by the filter above
            tally.merge(scan.codes)
    codebook_size = max(tokenizer_rows, key=lambda r: r.sentences).codebook_size if tokenizer_rows else 1 << 16
    stats = summarize(tally, codebook_size)
    digests = np.concatenate(tally.digests) if tally.digests else np.zeros((0, 2), np.uint64)
    groups = duplicate_rows(digests)
    stats.duplicate_sentences = sum(g.size - 1 for g in groups)
    hashes = ColumnHashes("id", [s.entry.uri for s in deep], [s.id_hashes for s in deep])
    bytes_read = 0
    for group in groups[:max_examples]:
        places, n = hashes.strings_at(np.sort(group))
        stats.duplicate_examples.append([value for _, _, value in places])
        bytes_read += n
    return stats, bytes_read
