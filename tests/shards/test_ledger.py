import pyarrow as pa

from lvm_data.outcomes import Outcome, Reason
from lvm_data.shards.ledger import (
    ItemEvent,
    LedgerRow,
    check_ledger_table,
    count_rows,
    ledger_table,
    resolve_item,
    resolve_unit,
    rows_from_table,
)

OK = Outcome.ok()


def test_ok_when_any_sentence_was_written_ids_sorted_and_unique():
    events = [
        ItemEvent("k", "u", Outcome.failed(Reason.TOKENIZE_ERROR, "x")),
        ItemEvent("k", "u", OK, "b"),
        ItemEvent("k", "u", OK, "a"),
        ItemEvent("k", "u", OK, "b"),
    ]
    row = resolve_item("s", "unit", "k", events)
    assert (row.status, row.reason, row.sentence_ids, row.uri) == ("ok", "ok", ("a", "b"), "u")


def test_failure_choice_does_not_depend_on_event_order():
    events = [
        ItemEvent("k", "u", Outcome.filtered(Reason.LEFTOVER)),
        ItemEvent("k", "u", Outcome.failed(Reason.TOKENIZE_ERROR, "t")),
        ItemEvent("k", "u", Outcome.failed(Reason.DECODE_ERROR, "d")),
    ]
    first = resolve_item("s", "unit", "k", events)
    assert resolve_item("s", "unit", "k", events[::-1]) == first
    assert (first.status, first.reason, first.detail) == ("failed", "decode_error", "d")


def test_an_item_nobody_reported_on_is_an_internal_error_not_a_drop():
    rows = resolve_unit("s", "unit", ["a", "b"], [ItemEvent("b", "ub", OK, "id")])
    assert [(r.key, r.status, r.reason) for r in rows] == [("a", "failed", "internal_error"), ("b", "ok", "ok")]
    assert "no stage reported" in rows[0].detail


def test_table_round_trip_and_checks():
    rows = [
        LedgerRow("b", "s", "u", "ub", "ok", "ok", "", ("x",)),
        LedgerRow("a", "s", "u", "ua", "failed", "not_media", "bad", ()),
    ]
    table = ledger_table(rows)
    assert table["key"].to_pylist() == ["a", "b"]
    assert check_ledger_table(table) == []
    assert rows_from_table(table) == sorted(rows, key=lambda r: r.key)
    assert count_rows(rows) == {"inputs": 2, "ok": 1, "filtered": 0, "failed": 1, "reasons": {"not_media": 1, "ok": 1}}


def test_check_finds_schema_violations():
    rows = [LedgerRow("a", "s", "u", "", "ok", "ok", "", ()), LedgerRow("a", "s", "u", "", "weird", "ok", "", ())]
    problems = " | ".join(check_ledger_table(ledger_table(rows)))
    assert "status values outside the schema" in problems and "duplicate keys" in problems
    assert "ok rows without sentence ids" in problems
    assert "differ from schemas/ledger.schema.json" in check_ledger_table(pa.table({"key": ["a"]}))[0]
