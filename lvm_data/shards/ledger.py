"""The ledger: exactly one row per input item, built from the events the pipeline saw for it.

An `ItemEvent` is one thing that happened to an item: it failed to decode, a template filtered it,
or a sentence holding it was tokenized (ok, with the sentence id) or failed. `resolve_item` turns all
events of an item into its one ledger row: ok when at least one sentence holding it was written,
otherwise its first failure (failed before filtered, then by reason code and detail, so the choice
never depends on event order). An item read but never heard of again is an internal error, not a
silent drop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as _pc

from lvm_data.outcomes import Outcome, Reason, Status
from lvm_data.shards.schema import arrow_schema, load_schema

# pyarrow.compute makes its kernels (pc.equal, pc.sum, ...) at import time, so the type checker cannot
# see them: reach them through an untyped alias.
pc: Any = _pc

_STATUS_ORDER = {Status.FAILED: 0, Status.FILTERED: 1, Status.OK: 2}


@dataclass(frozen=True)
class ItemEvent:
    """Something that happened to item `key` (read from `uri`); `sentence_id` is set for ok events.
    `sample` is a JPEG thumbnail of what a curation filter removed (for the report), when it has one."""

    key: str
    uri: str
    outcome: Outcome
    sentence_id: str = ""
    sample: bytes | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class LedgerRow:
    key: str
    source: str
    unit: str
    uri: str
    status: str
    reason: str
    detail: str
    sentence_ids: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "source": self.source,
            "unit": self.unit,
            "uri": self.uri,
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail,
            "sentence_ids": list(self.sentence_ids),
        }


def resolve_item(source: str, unit: str, key: str, events: list[ItemEvent]) -> LedgerRow:
    """The one ledger row of an item from all its events (see the module docstring)."""
    if not events:
        return LedgerRow(
            key,
            source,
            unit,
            "",
            Status.FAILED.value,
            Reason.INTERNAL_ERROR.value,
            f"{key}: item was read but no stage reported on it (pipeline bug)",
        )
    uri = next((e.uri for e in events if e.uri), "")
    ok_ids = sorted({e.sentence_id for e in events if e.outcome.is_ok and e.sentence_id})
    if ok_ids:
        return LedgerRow(key, source, unit, uri, Status.OK.value, Reason.OK.value, "", tuple(ok_ids))
    bad = [e.outcome for e in events if not e.outcome.is_ok]
    if not bad:
        return LedgerRow(
            key,
            source,
            unit,
            uri,
            Status.FAILED.value,
            Reason.INTERNAL_ERROR.value,
            f"{key}: reported ok without a sentence id (pipeline bug)",
        )
    first = min(bad, key=lambda o: (_STATUS_ORDER[o.status], o.reason.value, o.detail))
    return LedgerRow(key, source, unit, uri, first.status.value, first.reason.value, first.detail)


def resolve_unit(source: str, unit: str, expected: Iterable[str], events: Iterable[ItemEvent]) -> list[LedgerRow]:
    """Ledger rows, sorted by key, for every expected key and every key an event names."""
    by_key: dict[str, list[ItemEvent]] = {key: [] for key in expected}
    for event in events:
        by_key.setdefault(event.key, []).append(event)
    return [resolve_item(source, unit, key, by_key[key]) for key in sorted(by_key)]


def ledger_table(rows: list[LedgerRow]) -> pa.Table:
    """Rows (sorted by key) as an Arrow table with the ledger schema."""
    rows = sorted(rows, key=lambda r: r.key)
    schema = arrow_schema("ledger")
    columns = {name: [getattr(r, name) for r in rows] for name in schema.names}
    columns["sentence_ids"] = [list(r.sentence_ids) for r in rows]
    return pa.table(
        {name: pa.array(columns[name], type=schema.field(name).type) for name in schema.names}, schema=schema
    )


def rows_from_table(table: pa.Table) -> list[LedgerRow]:
    return [
        LedgerRow(
            r["key"], r["source"], r["unit"], r["uri"], r["status"], r["reason"], r["detail"], tuple(r["sentence_ids"])
        )
        for r in table.to_pylist()
    ]


def check_ledger_table(table: pa.Table) -> list[str]:
    """Problems of a ledger table against schemas/ledger.schema.json (empty when it conforms)."""
    problems = []
    if not table.schema.equals(arrow_schema("ledger")):
        problems.append(f"ledger columns {table.schema} differ from schemas/ledger.schema.json")
        return problems
    props = load_schema("ledger")["properties"]
    for column in ("status", "reason"):
        allowed = pa.array(props[column]["enum"])
        bad = pc.invert(pc.is_in(table[column], value_set=allowed))
        if pc.any(bad).as_py():
            problems.append(f"ledger {column} values outside the schema: {pc.filter(table[column], bad)[:3]}")
    if pc.any(pc.equal(pc.utf8_length(table["key"]), 0)).as_py():
        problems.append("ledger has an empty key")
    if len(set(table["key"].to_pylist())) != table.num_rows:
        problems.append("ledger has duplicate keys")
    ok = pc.equal(table["status"], "ok")
    no_ids = pc.equal(pc.list_value_length(table["sentence_ids"]), 0)
    if pc.any(pc.and_(ok, no_ids)).as_py():
        problems.append("ledger has ok rows without sentence ids")
    return problems


def count_rows(rows: Iterable[LedgerRow]) -> dict:
    """inputs / ok / filtered / failed / reasons of ledger rows (the item half of the unit counts)."""
    rows = list(rows)
    statuses = Counter(r.status for r in rows)
    return {
        "inputs": len(rows),
        "ok": statuses["ok"],
        "filtered": statuses["filtered"],
        "failed": statuses["failed"],
        "reasons": dict(sorted(Counter(r.reason for r in rows).items())),
    }
