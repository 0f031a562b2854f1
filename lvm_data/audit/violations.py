"""Violations: what an audit found wrong, each with a stable kind code, where it is and what to do.

A `Violation` may stand for many rows (`count`); the examples it names are capped, the count is not.
Tests and the JSON output use the kind codes, never the display text.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _pc

# pyarrow.compute makes its kernels (pc.equal, pc.sum, ...) at import time, so the type checker cannot
# see them: reach them through an untyped alias.
pc: Any = _pc


class Kind(StrEnum):
    UNREADABLE_FILE = "unreadable_file"
    SCHEMA_MISMATCH = "schema_mismatch"
    WRONG_PARTITION = "wrong_partition"
    INVALID_VALUE = "invalid_value"
    CODE_OUT_OF_RANGE = "code_out_of_range"
    LENGTH_MISMATCH = "length_mismatch"
    DUPLICATE_ID = "duplicate_id"
    TOKENIZER_MISMATCH = "tokenizer_mismatch"
    COUNT_MISMATCH = "count_mismatch"
    LEDGER_STATUS = "ledger_status"
    DUPLICATE_KEY = "duplicate_key"
    MISSING_SENTENCE = "missing_sentence"
    ORPHAN_SENTENCE = "orphan_sentence"
    MISSING_FILE = "missing_file"
    UNCOMMITTED_FILE = "uncommitted_file"
    MANIFEST_MISMATCH = "manifest_mismatch"


# What each kind means and what to do about it; shown once per kind in every report.
ADVICE: dict[Kind, str] = {
    Kind.UNREADABLE_FILE: "a Parquet or JSON file cannot be opened or decoded; rewrite its unit (rerun the job: "
    "the unit's marker must be deleted first so resume redoes it)",
    Kind.SCHEMA_MISMATCH: "columns, types, file metadata or a JSON document differ from schemas/*.json; the "
    "writer and this lvm-data version disagree: rewrite with the current writer",
    Kind.WRONG_PARTITION: "rows or file metadata name another source or unit than the file's path says; "
    "fix the writer's partitioning and rewrite the unit",
    Kind.INVALID_VALUE: "values outside the schema (id not 24 or 32 hex chars, n_images < 1, empty names, unknown "
    "status or reason); fix the writer",
    Kind.CODE_OUT_OF_RANGE: "token codes >= the codebook size in the file metadata; the tokenizer or its "
    "metadata is wrong: re-tokenize these units",
    Kind.LENGTH_MISMATCH: "a sentence's tokens or frames do not match n_images x tokens_per_image (or n_images "
    "frames); re-tokenize these units",
    Kind.DUPLICATE_ID: "the same sentence id is written more than once; a unit was written twice or the id "
    "hash misses a field: delete the extra copies",
    Kind.TOKENIZER_MISMATCH: "more than one tokenizer fingerprint, codebook size or tokens per image; sentences "
    "from different tokenizers cannot be trained together: re-tokenize one part",
    Kind.COUNT_MISMATCH: "counts disagree (inputs != ok + filtered + failed, or markers and the manifest differ "
    "from the files); rerun the job's commit of those units",
    Kind.LEDGER_STATUS: "a ledger row's status, reason and sentence ids contradict each other (ok rows need "
    "reason ok and sentence ids; other rows none); fix the writer",
    Kind.DUPLICATE_KEY: "an input item has more than one ledger row in its source; every input must have "
    "exactly one: check the unit planner for overlapping units",
    Kind.MISSING_SENTENCE: "the ledger names sentence ids that no shard holds; sentences were lost after the "
    "ledger was written: rewrite those units",
    Kind.ORPHAN_SENTENCE: "shards hold sentences that no ledger row names; their inputs are unaccounted for: "
    "rewrite those units",
    Kind.MISSING_FILE: "a file the layout, a marker or the manifest requires is not there (including "
    "manifest.json of an unfinished job); rerun the job to finish or resume it",
    Kind.UNCOMMITTED_FILE: "a file without a commit marker (a crashed write or a stray file); trainers reading "
    "the folder would see it: resume the job or delete the file",
    Kind.MANIFEST_MISMATCH: "the manifest and the unit markers on disk list different units or tokenizers; "
    "rerun the job's finish step to rewrite the manifest",
}


@dataclass(frozen=True)
class Violation:
    """One finding: `where` is a file URI (or OUT/...), `detail` says what, `count` how many rows/items."""

    kind: Kind
    where: str
    detail: str
    count: int = 1

    def to_dict(self) -> dict:
        return {"kind": self.kind.value, "where": self.where, "detail": self.detail, "count": self.count}


def examples(values: list, limit: int = 3) -> str:
    """'a, b, c' or 'a, b, c and 7 more' for the values a detail names."""
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def row_names(
    table: pa.Table, column: str, mask: pa.ChunkedArray | pa.Array, first_row: int, keep: int = 3
) -> tuple[int, list[str]]:
    """How many rows `mask` selects, and names for the first `keep`: their value in `column`, or
    'row N' (N counted from the file's first row) when that column was not read."""
    count = pc.sum(mask).as_py() or 0
    if not count:
        return 0, []
    if column in table.column_names:
        return count, table[column].filter(mask).slice(0, keep).to_pylist()
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    rows = np.flatnonzero(mask.to_numpy(zero_copy_only=False))[:keep]
    return count, [f"row {first_row + int(r)}" for r in rows]


class RowProblems:
    """Rows of one file that break a rule: counted per (kind, rule), with a few example ids or keys."""

    def __init__(self, keep: int = 3):
        self.keep = keep
        self._rows: dict[tuple[Kind, str], tuple[int, list[str]]] = {}

    def add(self, kind: Kind, rule: str, count: int, names: list[str]) -> None:
        if count <= 0:
            return
        seen, shown = self._rows.get((kind, rule), (0, []))
        self._rows[(kind, rule)] = (seen + count, shown + names[: self.keep - len(shown)])

    def violations(self, where: str) -> list[Violation]:
        return [
            Violation(kind, where, f"{rule}: {count} (e.g. {examples(names, self.keep)})", count)
            for (kind, rule), (count, names) in self._rows.items()
        ]


@dataclass
class Findings:
    """Violations collected across an audit: every count kept, examples capped per kind."""

    max_examples: int = 20

    def __post_init__(self):
        self.totals: Counter[Kind] = Counter()  # rows or items found, per kind
        self.findings: Counter[Kind] = Counter()  # violations added, per kind
        self.shown: dict[Kind, list[Violation]] = {}

    def add(self, violation: Violation) -> None:
        self.totals[violation.kind] += violation.count
        self.findings[violation.kind] += 1
        shown = self.shown.setdefault(violation.kind, [])
        if len(shown) < self.max_examples:
            shown.append(violation)

    def extend(self, violations: list[Violation]) -> None:
        for v in violations:
            self.add(v)

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    def kinds(self) -> list[Kind]:
        """Kinds found, in the order of the Kind enum."""
        return [k for k in Kind if self.totals[k]]

    def to_dict(self) -> dict:
        return {
            k.value: {
                "count": self.totals[k],
                "advice": ADVICE[k],
                "examples": [v.to_dict() for v in self.shown.get(k, [])],
            }
            for k in self.kinds()
        }
