"""Scan one ledger file: status and reason totals, key hashes, and the sentence ids it names.

Sentence ids are checked against the hashes of every id the output's shards hold (`shard_ids`,
sorted); an id whose hash is absent is surely missing, so it is reported with its full text.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _pc
import pyarrow.parquet as pq

from lvm_data.audit import schemas
from lvm_data.audit.files import Entry, parquet, read_guarded
from lvm_data.audit.hashing import contains, hash_strings
from lvm_data.audit.violations import Kind, RowProblems, Violation, row_names
from lvm_data.outcomes import Reason, Status
from lvm_data.shards.schema import read_metadata

# pyarrow.compute makes its kernels (pc.equal, pc.sum, ...) at import time, so the type checker cannot
# see them: reach them through an untyped alias.
pc: Any = _pc

LEDGER_COLUMNS = ("key", "source", "unit", "status", "reason", "sentence_ids")
STATUSES = [s.value for s in Status]
REASONS = [r.value for r in Reason]


@dataclass
class LedgerScan:
    """One ledger file: rows per status and per reason, hashes of keys and of the sentence ids named."""

    entry: Entry
    counted: bool = False  # read, conforming, and counted
    rows: int = 0
    statuses: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    key_hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    sentence_hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    violations: list[Violation] = field(default_factory=list)
    bytes_read: int = 0


def scan_ledger_file(entry: Entry, shard_ids: np.ndarray | None) -> LedgerScan:
    """Totals and violations of one ledger file; `shard_ids` are the sorted id hashes of its output.

    shard_ids None: the key and sentence_ids columns are not read (no hashes, rows named by number)."""
    scan, bytes_read, error = read_guarded(entry.uri, lambda f: _scan(parquet(f), entry, shard_ids))
    if scan is None:
        scan = LedgerScan(entry, violations=[Violation(Kind.UNREADABLE_FILE, entry.uri, error)])
    scan.bytes_read = bytes_read
    return scan


def _scan(pf: pq.ParquetFile, entry: Entry, shard_ids: np.ndarray | None) -> LedgerScan:
    scan = LedgerScan(entry, rows=pf.metadata.num_rows)
    found, broken = schemas.file_violations(pf.schema_arrow, read_metadata(pf.metadata.metadata), "ledger", entry)
    scan.violations += found
    if broken & set(LEDGER_COLUMNS):
        return scan
    scan.counted = True
    keys, named, problems, first_row = [], [], RowProblems(), 0
    columns = [c for c in LEDGER_COLUMNS if shard_ids is not None or c not in ("key", "sentence_ids")]
    for i in range(pf.metadata.num_row_groups):
        table = pf.read_row_group(i, columns=columns)
        for row in table.group_by(["status", "reason"]).aggregate([([], "count_all")]).to_pylist():
            scan.statuses[row["status"]] += row["count_all"]
            scan.reasons[row["reason"]] += row["count_all"]
        if shard_ids is not None:
            keys.append(hash_strings(table["key"]))
            named.append(_check_sentence_ids(table, shard_ids, problems))
        _check_rows(table, entry, problems, first_row)
        first_row += table.num_rows
    scan.key_hashes = np.concatenate(keys) if keys else scan.key_hashes
    scan.sentence_hashes = np.concatenate(named) if named else scan.sentence_hashes
    scan.violations += problems.violations(entry.uri)
    return scan


def _check_rows(table: pa.Table, entry: Entry, problems: RowProblems, first_row: int) -> None:
    def rows(mask: pa.ChunkedArray) -> tuple[int, list[str]]:
        return row_names(table, "key", mask, first_row)

    ok, reason_ok = pc.equal(table["status"], "ok"), pc.equal(table["reason"], "ok")
    problems.add(Kind.INVALID_VALUE, "unknown status", *rows(pc.invert(pc.is_in(table["status"], pa.array(STATUSES)))))
    problems.add(Kind.INVALID_VALUE, "unknown reason", *rows(pc.invert(pc.is_in(table["reason"], pa.array(REASONS)))))
    problems.add(Kind.LEDGER_STATUS, "status and reason disagree about ok", *rows(pc.not_equal(ok, reason_ok)))
    if "sentence_ids" in table.column_names:
        n_ids = pc.list_value_length(table["sentence_ids"])
        problems.add(Kind.INVALID_VALUE, "key is empty", *rows(pc.equal(table["key"], "")))
        problems.add(Kind.LEDGER_STATUS, "status ok but no sentence ids", *rows(pc.and_(ok, pc.equal(n_ids, 0))))
        problems.add(
            Kind.LEDGER_STATUS,
            "status not ok but sentence ids named",
            *rows(pc.and_(pc.invert(ok), pc.greater(n_ids, 0))),
        )
    for column, expected in (("source", entry.source), ("unit", entry.unit)):
        problems.add(
            Kind.WRONG_PARTITION,
            f"{column} is not {expected!r} as the path says",
            *rows(pc.not_equal(table[column], expected)),
        )


def _check_sentence_ids(table: pa.Table, shard_ids: np.ndarray, problems: RowProblems) -> np.ndarray:
    """Hashes of the sentence ids named; ids whose hash no shard holds are reported as missing."""
    named = pc.list_flatten(table["sentence_ids"])
    hashes = hash_strings(named)
    missing = ~contains(shard_ids, hashes)
    if missing.any():
        absent = named.filter(pa.array(missing))
        problems.add(Kind.MISSING_SENTENCE, "sentence ids in no shard", len(absent), absent.slice(0, 3).to_pylist())
    return hashes
