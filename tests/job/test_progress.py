import json

from lvm_data.job.config import parse_job
from lvm_data.job.plan import ReadUnit, SourcePlan
from lvm_data.job.progress import Progress, plan_lines
from lvm_data.job.runs import Run, RunContext, TokenizerInfo
from lvm_data.job.steps import Selection
from lvm_data.sources.base import Unit


def make_run(out) -> Run:
    job = parse_job({"name": "j", "output": str(out), "image_size": 32, "sources": [
        {"name": "s", "input": {"format": "images", "paths": "x"}}]})
    units = (ReadUnit("s", Unit("s", "u0", ("a", "b"), 2)), ReadUnit("s", Unit("s", "u1", ("c",), 1)),
             ReadUnit("s", Unit("s", "t", ("x.tar",), None)))
    plan = SourcePlan("s", False, units, ("u0", "u1", "t"), {"u0": "d0", "u1": "d1", "t": "dt"}, 0, 3, 1,
                      frozenset({"u0"}))
    tok = TokenizerInfo("tiny", "open-muse", "fp", 256, 64, 32, "cpu", "float32")
    return Run(RunContext(job, "hash", tok, {"s": 0}), {"s": plan}, {"s": Selection(frozenset({"u1", "t"}))},
               started="2026-01-01T00:00:00+00:00")


def test_plan_lines_count_units_items_and_estimate_bytes(tmp_path):
    text = "\n".join(plan_lines(make_run(tmp_path)))
    assert "source s (images, template single): 3 units, 3 items (+ 1 units counted when read" in text
    assert "1 of 3 write units committed, 2 to run" in text
    assert "unit u0: 2 items (committed)" in text and "unit t: ? items" in text
    assert "1003 images -> 64192 tokens" in text  # 3 known + shard_size 1000 estimated for the tar


def write_marker(out, unit, committed, images):
    path = out / "units" / "source=s" / f"{unit}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = {"inputs": images + 1, "ok": images, "filtered": 0, "failed": 1, "reasons": {}, "sentences": images,
              "images": images, "tokens": 0}
    path.write_text(json.dumps({"source": "s", "unit": unit, "committed": committed, "counts": counts}))


def test_progress_counts_only_this_runs_units(tmp_path):
    clock = iter([0.0, 0.0, 10.0]).__next__
    progress = Progress(make_run(tmp_path), emit=lambda line: None, clock=clock)
    write_marker(tmp_path, "u0", "2025-12-31T00:00:00+00:00", 100)  # committed by an earlier run
    write_marker(tmp_path, "u1", "2026-01-01T00:00:05+00:00", 20)
    progress.poll()
    assert progress.poll() == "units 1/2  items 21  images 20  2.0 images/s  10s"


def test_progress_emits_a_last_line_when_the_pipeline_ends(tmp_path):
    lines = []
    with Progress(make_run(tmp_path), emit=lines.append, interval=60):
        write_marker(tmp_path, "t", "2026-01-01T00:00:09+00:00", 3)
    assert lines and lines[-1].startswith("units 1/2  items 4  images 3")
