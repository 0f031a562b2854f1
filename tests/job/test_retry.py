"""retry-failed's plain pieces: which units and keys it redoes (lvm_data.job.runs) and what a redone unit keeps
of its committed files (lvm_data.job.steps.finish_unit)."""

import hashlib

import numpy as np
import pytest

from lvm_data.job.plan import ReadUnit, ResumeError, SourcePlan
from lvm_data.job.runs import committed_for_retry, retry_selection
from lvm_data.job.steps import Selection, finish_unit
from lvm_data.outcomes import Outcome, Reason
from lvm_data.shards.ledger import ItemEvent
from lvm_data.shards.reader import list_markers, read_ledger, read_sentences
from lvm_data.shards.writer import SentenceRow, ShardInfo, UnitCommit
from lvm_data.sources.base import Unit

INFO = ShardInfo("fp", 8, 4, "h")


def hexid(name: str) -> str:
    return hashlib.blake2b(name.encode(), digest_size=12).hexdigest()


def sentence(name: str, *keys: str) -> SentenceRow:
    return SentenceRow(
        hexid(name), "s", "pairs", "depth", 2, np.arange(8, dtype=np.uint16), [("a", 0, "image")] * 2, list(keys)
    )


def commit(out, unit: str, outcomes: dict, rows=(), digest: str = "d", merge: bool = False) -> dict:
    """Commit `unit` with key -> Outcome (ok keys name their sentence: key -> ("ok", sentence id))."""
    events = []
    for key, outcome in outcomes.items():
        if isinstance(outcome, str):
            events.append(ItemEvent(key, key, Outcome.ok(), hexid(outcome)))
        else:
            events.append(ItemEvent(key, key, outcome))
    marker, _ = finish_unit(
        UnitCommit(str(out), "s", unit, digest, INFO), list(outcomes), events, list(rows), merge=merge
    )
    return marker


def state(out) -> tuple[dict, list]:
    ledger = {r["key"]: (r["status"], r["reason"]) for r in read_ledger(str(out)).to_pylist()}
    return ledger, sorted(read_sentences(str(out), columns=["id"])["id"].to_pylist())


def test_a_unit_redone_whole_replaces_its_files_and_a_partial_one_keeps_the_rest(tmp_path):
    left = Outcome.filtered(Reason.LEFTOVER)
    commit(
        tmp_path,
        "g0",
        {"a": "s1", "b": "s1", "c": left, "d": Outcome.failed(Reason.TRUNCATED)},
        [sentence("s1", "a", "b")],
    )
    # the bucket rebuilt with d repaired: c and d now pair up, a and b are shuffled into other sentences
    commit(
        tmp_path,
        "g0",
        {"a": "s2", "b": "s3", "c": "s3", "d": "s2"},
        [sentence("s2", "a", "d"), sentence("s3", "b", "c")],
        merge=True,
    )
    assert state(tmp_path) == ({k: ("ok", "ok") for k in "abcd"}, sorted(map(hexid, ["s2", "s3"])))  # s1 is gone
    commit(tmp_path, "u1", {"x": "sx", "u1#unreadable": Outcome.failed(Reason.READ_ERROR)}, [sentence("sx", "x")])
    commit(tmp_path, "u1", {"y": "sy", "z": Outcome.failed(Reason.DECODE_ERROR)}, [sentence("sy", "y")], merge=True)
    ledger, ids = state(tmp_path)
    assert {k: v for k, v in ledger.items() if k in "xyz" or "#" in k} == {
        "x": ("ok", "ok"),
        "y": ("ok", "ok"),
        "z": ("failed", "decode_error"),
    }  # the unit's items, read at last
    assert ids == sorted(map(hexid, ["s2", "s3", "sx", "sy"]))


def grouped_plan(n: int = 3) -> SourcePlan:
    buckets = tuple(f"g{i:06d}" for i in range(n))
    return SourcePlan(
        "s",
        True,
        (ReadUnit("s", Unit("s", "r0", ("x",), 1)),),
        buckets,
        dict.fromkeys(buckets, "d"),
        n,
        committed=frozenset(buckets),
    )


def test_retry_redoes_whole_buckets_with_failures_or_all_after_an_unreadable_unit(tmp_path):
    for bucket, failed in (("g000000", None), ("g000001", "k1"), ("g000002", None)):
        outcomes = {"k0" + bucket: Outcome.filtered(Reason.LEFTOVER)}
        if failed:
            outcomes[failed] = Outcome.failed(Reason.TIMEOUT)
        commit(tmp_path, bucket, outcomes)
    selection = retry_selection(str(tmp_path), grouped_plan())
    assert selection.units == {"g000001"} and not selection.merges("g000001")
    assert selection.wants("g000001", "anything") and not selection.wants("g000000", "k0g000000")
    commit(tmp_path, "g000002", {"r0#unreadable": Outcome.failed(Reason.READ_ERROR)})
    assert retry_selection(str(tmp_path), grouped_plan()).units == {"g000000", "g000001", "g000002"}
    plain = Selection(frozenset({"u"}), {"u": (frozenset({"k"}), frozenset({"k", "j"}))})
    assert plain.merges("u") and plain.wants("u", "k") and not plain.wants("u", "j")


def test_retry_accepts_changed_inputs_only_for_units_it_redoes(tmp_path):
    units = (ReadUnit("s", Unit("s", "u0", ("a",), 2)), ReadUnit("s", Unit("s", "u1", ("b",), 1)))
    plan = SourcePlan("s", False, units, ("u0", "u1"), {"u0": "new0", "u1": "new1"})
    commit(tmp_path, "u0", {"a": "sa", "a2": Outcome.failed(Reason.TRUNCATED)}, [sentence("sa", "a")], digest="old0")
    commit(tmp_path, "u1", {"b": "sb"}, [sentence("sb", "b")], digest="new1")
    markers = [{**m, "config_hash": "h"} for m in list_markers(str(tmp_path))]
    plan, changed = committed_for_retry(plan, markers, "h", str(tmp_path))
    assert changed == {"u0"} and plan.committed == {"u0", "u1"}
    selection = retry_selection(str(tmp_path), plan, changed)
    assert selection.units == {"u0"} and not selection.merges("u0")  # which file changed is unknown: all of it
    markers[1]["spec_digest"] = "old1"  # a unit without failures whose inputs changed: refused as on any run
    with pytest.raises(ResumeError, match="different inputs"):
        committed_for_retry(plan, markers, "h", str(tmp_path))
    grouped = grouped_plan(2)
    grouped_markers = [
        {"unit": b, "config_hash": "h", "spec_digest": "old", "counts": {"failed": int(b[-1] == "1")}}
        for b in grouped.write_units
    ]
    _, changed = committed_for_retry(grouped, grouped_markers, "h", str(tmp_path))
    assert changed == {"g000000", "g000001"}  # one digest for all buckets: every bucket is rebuilt
