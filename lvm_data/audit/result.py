"""What an audit found, as plain data: count tables, ledger totals, tokenizers, violations, statistics.

`AuditResult.to_dict()` is the `--json` document; the report module renders the same object.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from lvm_data.audit.codebook import CodebookStats
from lvm_data.audit.corpus import TokenizerRow
from lvm_data.audit.ledger import LedgerScan
from lvm_data.audit.mixture import MixtureRow, Target
from lvm_data.audit.sentences import SentenceScan, Tally
from lvm_data.audit.violations import Findings

ALL = "*"


@dataclass
class CountRow:
    """Sentences, images, tokens and bytes on disk of one source x template x task (ALL = summed over)."""

    source: str
    template: str
    task: str
    sentences: int = 0
    images: int = 0
    tokens: int = 0
    bytes: int = 0
    share: float = 0.0  # of all tokens

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict:
        return {**vars(self), "bytes_per_token": self.bytes_per_token}


@dataclass
class LedgerRow:
    """Ledger totals of one source: every input item is one of ok, filtered, failed."""

    source: str
    inputs: int = 0
    ok: int = 0
    filtered: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def success_rate(self) -> float:
        return self.ok / self.inputs if self.inputs else 0.0

    def to_dict(self) -> dict:
        return {**vars(self), "success_rate": self.success_rate}


def count_rows(scans: list[SentenceScan]) -> tuple[list[CountRow], list[CountRow], CountRow]:
    """(rows per source x template x task, rows per source, the total), shares of all tokens filled in."""
    groups: dict[tuple[str, str, str], Tally] = {}
    for scan in scans:
        for key, tally in scan.groups.items():
            groups.setdefault(key, Tally()).add(tally)
    per_source: dict[tuple[str, str, str], Tally] = {}
    for (source, _, _), tally in groups.items():
        per_source.setdefault((source, ALL, ALL), Tally()).add(tally)
    total = Tally()
    for tally in per_source.values():
        total.add(tally)

    def rows(tallies: dict[tuple[str, str, str], Tally]) -> list[CountRow]:
        return [
            CountRow(
                *key, t.sentences, t.images, t.tokens, round(t.bytes), t.tokens / total.tokens if total.tokens else 0.0
            )
            for key, t in sorted(tallies.items())
        ]

    return rows(groups), rows(per_source), rows({(ALL, ALL, ALL): total})[0]


def ledger_rows(ledgers: list[LedgerScan]) -> list[LedgerRow]:
    """One row per source (summed over outputs), then the total (source ALL)."""
    by_source: dict[str, list[LedgerScan]] = {}
    for scan in ledgers:
        if scan.counted:
            by_source.setdefault(scan.entry.source, []).append(scan)

    def row(source: str, scans: list[LedgerScan]) -> LedgerRow:
        statuses, reasons = Counter(), Counter()
        for scan in scans:
            statuses.update(scan.statuses)
            reasons.update(scan.reasons)
        return LedgerRow(
            source,
            sum(statuses.values()),
            statuses["ok"],
            statuses["filtered"],
            statuses["failed"],
            dict(sorted(reasons.items())),
        )

    rows = [row(source, scans) for source, scans in sorted(by_source.items())]
    return rows + [row(ALL, [s for scans in by_source.values() for s in scans])] if rows else []


def curation_rows(records) -> dict[str, dict[str, int]]:
    """Per source, what its units' curation filters removed (unit markers' counts.curation), by reason."""
    out: dict[str, Counter] = {}
    for record in records:
        removed = record["counts"].get("curation", {}).get("removed")
        if removed is not None:
            out.setdefault(record["source"], Counter()).update(removed)
    return {source: dict(sorted(c.items())) for source, c in sorted(out.items())}


@dataclass
class IoStats:
    files: int = 0
    corpus_bytes: int = 0
    bytes_read: int = 0
    seconds: float = 0.0

    @property
    def read_fraction(self) -> float:
        return self.bytes_read / self.corpus_bytes if self.corpus_bytes else 0.0


@dataclass
class AuditResult:
    paths: list[str]
    deep: bool
    groups: list[CountRow]
    sources: list[CountRow]
    total: CountRow
    ledger: list[LedgerRow]
    tokenizers: list[TokenizerRow]
    lengths: dict[int, int]  # images per sentence -> sentences
    findings: Findings
    io: IoStats
    notes: list[str] = field(default_factory=list)
    curation: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> removed per reason (markers)
    timings: dict | None = None  # the committed units' time per step summed (lvm_data.shards.timings)
    codebook: CodebookStats | None = None
    target: Target | None = None
    mixture: list[MixtureRow] | None = None

    @property
    def ok(self) -> bool:
        """True when no violation was found."""
        return self.findings.total == 0

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "paths": self.paths,
            "deep": self.deep,
            "io": {**vars(self.io), "read_fraction": self.io.read_fraction},
            "total": self.total.to_dict(),
            "sources": [r.to_dict() for r in self.sources],
            "groups": [r.to_dict() for r in self.groups],
            "ledger": [r.to_dict() for r in self.ledger],
            "tokenizers": [vars(t) for t in self.tokenizers],
            "sentence_lengths": {str(k): v for k, v in sorted(self.lengths.items())},
            "violations": {"total": self.findings.total, "kinds": self.findings.to_dict()},
            "notes": self.notes,
            "curation": self.curation,
            "timings": self.timings,
            "codebook": self.codebook.to_dict() if self.codebook else None,
            "mixture": self._mixture_dict(),
        }

    def _mixture_dict(self) -> dict | None:
        if self.mixture is None:
            return None
        assert self.target is not None, "run_audit compares a mixture only against a target"
        return {
            "target": self.target.name,
            "location": self.target.location,
            "tolerance": self.target.tolerance,
            "rows": [r.to_dict() for r in self.mixture],
        }
