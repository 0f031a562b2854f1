"""Scan one sentence file from its footer and its small columns (never the token payload by default).

Footer: row counts, column chunk sizes, the `tokens` leaf's value count (= tokens written) and its
min/max statistics (= codes in range). Small columns: id, source, template, task, n_images. With
`deep`, the tokens column too (per-row lengths and ranges, histogram, sentence digests).
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
from lvm_data.audit.codebook import CodeTally, row_tokens
from lvm_data.audit.files import Entry, parquet, read_guarded
from lvm_data.audit.hashing import hash_strings
from lvm_data.audit.violations import Kind, RowProblems, Violation, row_names
from lvm_data.shards.schema import read_metadata

# pyarrow.compute makes its kernels (pc.equal, pc.sum, ...) at import time, so the type checker cannot
# see them: reach them through an untyped alias.
pc: Any = _pc

SMALL_COLUMNS = ("id", "source", "template", "task", "n_images")
ID_PATTERN = r"^([0-9a-f]{24}|[0-9a-f]{32})$"  # schemas/sentence.schema.json, property id
GroupKey = tuple[str, str, str]  # (source, template, task)


@dataclass
class Tally:
    sentences: int = 0
    images: int = 0
    tokens: int = 0
    bytes: float = 0.0

    def add(self, other: Tally) -> None:
        self.sentences += other.sentences
        self.images += other.images
        self.tokens += other.tokens
        self.bytes += other.bytes


@dataclass
class SentenceScan:
    """What one sentence file holds. `tokens_written` is the footer's count; group tallies count
    n_images x tokens_per_image, so the two differ exactly when lengths are wrong."""

    entry: Entry
    counted: bool = False  # read, conforming, and counted
    meta: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    images: int = 0
    tokens_written: int = 0
    groups: dict[GroupKey, Tally] = field(default_factory=dict)
    lengths: Counter = field(default_factory=Counter)  # n_images -> sentences
    id_hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    range_unchecked: int = 0  # row groups without min/max statistics on the tokens leaf
    codes: CodeTally | None = None
    violations: list[Violation] = field(default_factory=list)
    bytes_read: int = 0

    def meta_int(self, key: str) -> int:
        value = self.meta.get(key, "")
        return int(value) if value.isdigit() else 0


@dataclass
class _Columns:
    """Where the leaves we need sit in the file; None when the column is absent or malformed."""

    tokens_leaf: int | None
    frames_leaf: int | None
    tokens_per_image: int
    codebook_size: int


def scan_sentence_file(entry: Entry, deep: bool = False, ids: bool = True) -> SentenceScan:
    """Counts, id hashes and violations of one sentence file; an unreadable file yields only a violation.

    ids=False leaves the id column unread (no id hashes, rows named by number); deep implies ids."""
    scan, bytes_read, error = read_guarded(entry.uri, lambda f: _scan(parquet(f), entry, deep, ids or deep))
    if scan is None:
        scan = SentenceScan(entry, violations=[Violation(Kind.UNREADABLE_FILE, entry.uri, error)])
    scan.bytes_read = bytes_read
    return scan


def _scan(pf: pq.ParquetFile, entry: Entry, deep: bool, ids: bool) -> SentenceScan:
    scan = SentenceScan(entry, meta=read_metadata(pf.metadata.metadata), rows=pf.metadata.num_rows)
    columns = _check_file(pf, scan)
    if columns is None:
        return scan
    scan.counted = True
    hashes, problems, group_bytes, first_row = [], RowProblems(), 0.0, 0
    scan.codes = CodeTally() if deep and columns.tokens_leaf is not None else None
    names = [c for c in SMALL_COLUMNS if ids or c != "id"] + (["tokens"] if scan.codes else [])
    for i in range(pf.metadata.num_row_groups):
        rg = pf.metadata.row_group(i)
        table = pf.read_row_group(i, columns=names)
        n_images = table["n_images"].to_numpy().astype(np.int64)
        group_bytes += _count(table, rg, n_images, columns, scan)
        if ids:
            hashes.append(hash_strings(table["id"]))
        _check_values(table, entry, problems, first_row)
        _check_footer(rg, i, n_images, columns, scan, tokens=scan.codes is None)
        if scan.codes is not None:
            _check_tokens(table, columns, scan, problems, first_row)
        first_row += table.num_rows
    scan.id_hashes = np.concatenate(hashes) if hashes else scan.id_hashes
    scale = entry.size / group_bytes if group_bytes else 0.0
    for tally in scan.groups.values():
        tally.bytes *= scale  # footer and page headers shared out in proportion
    scan.violations += problems.violations(entry.uri)
    return scan


def _check_file(pf: pq.ParquetFile, scan: SentenceScan) -> _Columns | None:
    """Schema, metadata and partition checks; None when the small columns cannot be read as counts."""
    found, broken = schemas.file_violations(pf.schema_arrow, scan.meta, "sentence", scan.entry)
    scan.violations += found
    if broken & set(SMALL_COLUMNS):
        return None
    leaves = {pf.schema.column(j).path.split(".")[0]: j for j in reversed(range(len(pf.schema)))}
    return _Columns(
        tokens_leaf=None if "tokens" in broken else leaves["tokens"],
        frames_leaf=None if "frames" in broken else leaves["frames"],
        tokens_per_image=scan.meta_int("tokens_per_image"),
        codebook_size=scan.meta_int("codebook_size"),
    )


def _count(
    table: pa.Table, rg: pq.RowGroupMetaData, n_images: np.ndarray, columns: _Columns, scan: SentenceScan
) -> float:
    """Add one row group to the tallies; returns its compressed bytes (shared out by images)."""
    images = int(n_images.sum())
    grouped = table.group_by(["source", "template", "task"]).aggregate([("n_images", "sum"), ("n_images", "count")])
    rg_bytes = float(sum(rg.column(c).total_compressed_size for c in range(rg.num_columns)))
    for row in grouped.to_pylist():
        part = Tally(row["n_images_count"], row["n_images_sum"], row["n_images_sum"] * columns.tokens_per_image)
        part.bytes = rg_bytes * (part.images / images if images else part.sentences / max(1, table.num_rows))
        scan.groups.setdefault((row["source"], row["template"], row["task"]), Tally()).add(part)
    values, counts = np.unique(n_images, return_counts=True)
    scan.lengths.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
    scan.images += images
    if columns.tokens_leaf is not None:  # less the entry Parquet stores for each empty list (n_images < 1)
        scan.tokens_written += rg.column(columns.tokens_leaf).num_values - int((n_images < 1).sum())
    return rg_bytes


def _check_values(table: pa.Table, entry: Entry, problems: RowProblems, first_row: int) -> None:
    def named(mask: pa.ChunkedArray) -> tuple[int, list[str]]:
        return row_names(table, "id", mask, first_row)

    if "id" in table.column_names:
        problems.add(
            Kind.INVALID_VALUE,
            "id is not 24 (or 32) lowercase hex characters",
            *named(pc.invert(pc.match_substring_regex(table["id"], ID_PATTERN))),
        )
    problems.add(Kind.INVALID_VALUE, "n_images < 1", *named(pc.less(table["n_images"], 1)))
    for column in ("source", "template"):
        problems.add(Kind.INVALID_VALUE, f"{column} is empty", *named(pc.equal(table[column], "")))
    problems.add(
        Kind.WRONG_PARTITION,
        f"source is not {entry.source!r} as the path says",
        *named(pc.not_equal(table["source"], entry.source)),
    )


def _check_footer(
    rg: pq.RowGroupMetaData, i: int, n_images: np.ndarray, columns: _Columns, scan: SentenceScan, tokens: bool
) -> None:
    """Row-group checks from the footer alone: frames per image, and (unless deep) tokens and codes.

    A list column's value count holds one entry per list element and one per empty list, so the
    expected count is the sum of max(length, 1) over rows."""
    uri = scan.entry.uri
    if columns.frames_leaf is not None:
        found, expected = rg.column(columns.frames_leaf).num_values, int(np.maximum(n_images, 1).sum())
        if found != expected:
            scan.violations.append(
                Violation(
                    Kind.LENGTH_MISMATCH, uri, f"row group {i}: {found} frame entries where n_images says {expected}"
                )
            )
    if not tokens or columns.tokens_leaf is None:
        return
    chunk, tpi = rg.column(columns.tokens_leaf), columns.tokens_per_image
    expected = int(np.maximum(n_images * tpi, 1).sum())
    if tpi and chunk.num_values != expected:
        scan.violations.append(
            Violation(
                Kind.LENGTH_MISMATCH,
                uri,
                f"row group {i}: {chunk.num_values} token entries "
                f"where n_images x {tpi} says {expected} (--deep names the rows)",
            )
        )
    stats = chunk.statistics
    if stats is None or not stats.has_min_max:
        scan.range_unchecked += 1
    elif columns.codebook_size and stats.max >= columns.codebook_size:
        scan.violations.append(
            Violation(
                Kind.CODE_OUT_OF_RANGE,
                uri,
                f"row group {i}: largest code {stats.max} >= "
                f"codebook size {columns.codebook_size} (--deep names the rows)",
            )
        )


def _check_tokens(
    table: pa.Table, columns: _Columns, scan: SentenceScan, problems: RowProblems, first_row: int
) -> None:
    """Deep, per row: token count = n_images x tokens_per_image, every code < codebook size."""
    assert scan.codes is not None, "called only for a deep scan"
    rows = row_tokens(table["tokens"], columns.codebook_size or 1 << 16)
    scan.codes.add(scan.entry.source, rows.histogram, columns.codebook_size)
    scan.codes.digests.append(rows.digests)
    if columns.tokens_per_image:
        wrong = rows.lengths != table["n_images"].to_numpy().astype(np.int64) * columns.tokens_per_image
        problems.add(
            Kind.LENGTH_MISMATCH,
            f"tokens != n_images x {columns.tokens_per_image}",
            *row_names(table, "id", pa.array(wrong), first_row),
        )
    problems.add(
        Kind.CODE_OUT_OF_RANGE,
        f"codes >= codebook size {columns.codebook_size}",
        *row_names(table, "id", pa.array(rows.out_of_range), first_row),
    )
