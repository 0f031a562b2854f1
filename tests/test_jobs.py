import pytest

from lvm_data.config import parse_job
from lvm_data.jobs import Run, RunContext, TokenizerInfo, next_wave, open_run, retry_selection
from lvm_data.plan import ReadUnit, ResumeError, SourcePlan
from lvm_data.process import Selection
from lvm_data.sources.base import Unit
from lvm_data.testing import images_source, write_corpus, write_tiny_checkpoint
from lvm_data.tokenizer import load

UNITS = [(("s", f"u{i}"), 10) for i in range(5)]


def test_first_wave_is_one_unit_per_worker_then_sized_by_rate():
    big = [(key, 300) for key, _ in UNITS]
    assert next_wave(big, None, 120, 1) == 1 and next_wave(big, None, 120, 2) == 2
    assert next_wave(UNITS, None, 120, 1) == 5  # a small job is one wave (FIRST_WAVE_ITEMS)
    assert next_wave(UNITS, rate=0.25, seconds=120, first=1) == 3  # 30 items fit in two minutes
    assert next_wave(UNITS, rate=0.001, seconds=120, first=1) == 1  # always at least a unit
    assert next_wave(UNITS, rate=100.0, seconds=120, first=1) == 5 and next_wave([], None, 120, 1) == 0


def make_run() -> Run:
    job = parse_job({"name": "j", "output": "o", "shard_size": 7, "sources": [
        {"name": "s", "input": {"format": "images", "paths": "x"}},
        {"name": "g", "input": {"format": "images", "paths": "y"}}]})
    plain = SourcePlan("s", False, (ReadUnit("s", Unit("s", "u0", ("a",), 1)), ReadUnit("s", Unit("s", "t", ("x",)))),
                       ("u0", "t"), {"u0": "d0", "t": "dt"})
    grouped = SourcePlan("g", True, (ReadUnit("g", Unit("g", "r0", ("b",), 1)),), ("g000000", "g000001"),
                         {"g000000": "dg", "g000001": "dg"}, 2)
    tok = TokenizerInfo("t", "open-muse", "fp", 8, 4, 32, "cpu", "float32")
    selections = {"s": Selection(frozenset({"u0", "t"})), "g": Selection(frozenset({"g000000", "g000001"}))}
    return Run(RunContext(job, "h", tok, {"g": 2}), {"s": plain, "g": grouped}, selections)


def test_wave_units_and_restriction():
    run = make_run()
    plain, grouped = run.wave_units()
    assert plain == [(("s", "u0"), 1), (("s", "t"), 7)] and grouped == [("g", "g000000"), ("g", "g000001")]
    wave = run.only({("s", "t")})
    assert [r.unit.id for r in wave.read_units()] == ["t"] and wave.seeds() == [(("s", "t"), "dt")]
    last = run.only({("g", "g000000"), ("g", "g000001")})
    assert [r.unit.id for r in last.read_units()] == ["r0"] and len(last.seeds()) == 2


def test_open_run_checks_the_image_size_and_retry_needs_a_finished_job(tmp_path):
    tiny = load(str(write_tiny_checkpoint(tmp_path / "tiny")), device="cpu")
    write_corpus(tmp_path / "in", broken=False)
    raw = {"name": "j", "output": str(tmp_path / "out"), "image_size": 64,
           "sources": [images_source("s", tmp_path / "in")]}
    with pytest.raises(ValueError, match="image_size 64 does not match the tokenizer"):
        open_run(parse_job(raw), tiny)
    del raw["image_size"]
    run = open_run(parse_job(raw), tiny)
    assert run.context.job.image_size == 32 and run.seeds() == [(("s", "000000"), run.plans["s"].digests["000000"])]
    with pytest.raises(ResumeError, match="uncommitted units; finish the job"):
        retry_selection(str(tmp_path / "out"), run.plans["s"])
