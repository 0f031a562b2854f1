import dataclasses

import pytest

from lvm_data.job.config import parse_job
from lvm_data.job.plan import ReadUnit, ResumeError, SourcePlan
from lvm_data.job.runs import Run, RunContext, TokenizerInfo, open_run, retry_selection
from lvm_data.job.steps import Selection
from lvm_data.sources.base import Unit
from lvm_data.testing import images_source, write_corpus, write_tiny_checkpoint
from lvm_data.tokenizer import load

UNITS = [(("s", f"u{i}"), 10) for i in range(5)]


def make_run() -> Run:
    job = parse_job(
        {
            "name": "j",
            "output": "o",
            "shard_size": 7,
            "sources": [
                {"name": "s", "input": {"format": "images", "paths": "x"}},
                {"name": "g", "input": {"format": "images", "paths": "y"}},
            ],
        }
    )
    plain = SourcePlan(
        "s",
        False,
        (ReadUnit("s", Unit("s", "u0", ("a",), 1)), ReadUnit("s", Unit("s", "t", ("x",)))),
        ("u0", "t"),
        {"u0": "d0", "t": "dt"},
    )
    grouped = SourcePlan(
        "g",
        True,
        (ReadUnit("g", Unit("g", "r0", ("b",), 1)),),
        ("g000000", "g000001"),
        {"g000000": "dg", "g000001": "dg"},
        2,
    )
    tok = TokenizerInfo("t", "open-muse", "fp", 8, 4, 32, "cpu", "float32")
    selections = {"s": Selection(frozenset({"u0", "t"})), "g": Selection(frozenset({"g000000", "g000001"}))}
    return Run(RunContext(job, "h", tok, {"g": 2}), {"s": plain, "g": grouped}, selections)


def test_work_units_one_per_read_unit_and_one_per_bucket():
    run = make_run()
    plain = run.plain_units()
    assert [(w.source, w.unit, w.spec_digest, [r.unit.id for r in w.read_units]) for w in plain] == [
        ("s", "u0", "d0", ["u0"]),
        ("s", "t", "dt", ["t"]),
    ]
    assert [r.unit.id for r in run.grouped_read_units()] == ["r0"]
    r0 = run.plans["g"].read_units[0]
    buckets = run.bucket_units({("g", "g000001"): [r0, r0]})
    assert [(w.unit, w.grouped, [r.unit.id for r in w.read_units]) for w in buckets] == [
        ("g000000", True, []),
        ("g000001", True, ["r0"]),
    ]  # an empty bucket still commits
    narrower = dataclasses.replace(run, selections={**run.selections, "s": Selection(frozenset({"t"}))})
    assert [w.unit for w in narrower.plain_units()] == ["t"]
    staged = dataclasses.replace(
        run, plans={**run.plans, "s": dataclasses.replace(run.plans["s"], staged=frozenset({"u0"}))}
    )
    assert [w.unit for w in staged.plain_units()] == ["t"]  # staged for token-space dedup: not encoded again


def test_open_run_checks_the_image_size_and_retry_needs_a_finished_job(tmp_path):
    tiny = load(str(write_tiny_checkpoint(tmp_path / "tiny")), device="cpu")
    write_corpus(tmp_path / "in", broken=False)
    raw = {
        "name": "j",
        "output": str(tmp_path / "out"),
        "image_size": 64,
        "sources": [images_source("s", tmp_path / "in")],
    }
    with pytest.raises(ValueError, match="image_size 64 does not match the tokenizer"):
        open_run(parse_job(raw), tiny)
    del raw["image_size"]
    run = open_run(parse_job(raw), tiny)
    assert run.context.job.image_size == 32 and run.seeds() == [(("s", "000000"), run.plans["s"].digests["000000"])]
    with pytest.raises(ResumeError, match="uncommitted units; finish the job"):
        retry_selection(str(tmp_path / "out"), run.plans["s"])
