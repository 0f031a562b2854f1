import json

from lvm_data.job.config import parse_job
from lvm_data.job.plan import ReadUnit, SourcePlan
from lvm_data.job.progress import Progress, items_to_run, plan_lines
from lvm_data.job.runs import Run, RunContext, TokenizerInfo
from lvm_data.job.steps import Selection
from lvm_data.sources.base import Unit


def make_run(out) -> Run:
    job = parse_job(
        {
            "name": "j",
            "output": str(out),
            "image_size": 32,
            "shard_size": 1000,
            "sources": [{"name": "s", "input": {"format": "images", "paths": "x"}}],
        }
    )
    units = (
        ReadUnit("s", Unit("s", "u0", ("a", "b"), 2)),
        ReadUnit("s", Unit("s", "u1", ("c",), 1)),
        ReadUnit("s", Unit("s", "t", ("x.tar",), None)),
    )
    plan = SourcePlan(
        "s", False, units, ("u0", "u1", "t"), {"u0": "d0", "u1": "d1", "t": "dt"}, 0, 3, 1, frozenset({"u0"})
    )
    tok = TokenizerInfo("tiny", "open-muse", "fp", 256, 64, 32, "cpu", "float32")
    return Run(
        RunContext(job, "hash", tok, {"s": 0}),
        {"s": plan},
        {"s": Selection(frozenset({"u1", "t"}))},
        started="2026-01-01T00:00:00+00:00",
    )


def test_plan_lines_count_units_items_and_estimate_bytes(tmp_path):
    text = "\n".join(plan_lines(make_run(tmp_path)))
    assert "source s (images, template single): 3 units, 3 items (+ 1 units counted when read" in text
    assert "1 of 3 write units committed, 2 to run" in text
    assert "unit u0: 2 items (committed)" in text and "unit t: ? items" in text
    assert "1003 images -> 64192 tokens" in text  # 3 known + shard_size 1000 estimated for the tar


def write_marker(out, unit, committed, images):
    path = out / "units" / "source=s" / f"{unit}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = {
        "inputs": images + 1,
        "ok": images,
        "filtered": 0,
        "failed": 1,
        "reasons": {},
        "sentences": images,
        "images": images,
        "tokens": 0,
    }
    path.write_text(json.dumps({"source": "s", "unit": unit, "committed": committed, "counts": counts}))


def write_in_flight(out, run_id, units):
    path = out / "progress" / f"run={run_id}" / "host-1-0.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"written": "now", "units": units}))


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_items_to_run_counts_the_selected_units_and_estimates_containers(tmp_path):
    assert items_to_run(make_run(tmp_path)) == 1 + 1000  # u1's one item, the tar at shard_size


def test_progress_counts_only_this_runs_units(tmp_path):
    clock = Clock()
    progress = Progress(make_run(tmp_path), report=lambda snap: None, clock=clock)
    write_marker(tmp_path, "u0", "2025-12-31T00:00:00+00:00", 100)  # committed by an earlier run
    write_marker(tmp_path, "u1", "2026-01-01T00:00:05+00:00", 20)
    clock.now = 10.0
    snap = progress.poll()
    assert (snap.done, snap.total, snap.detail) == (21, 1001, "images 20  units 1/2")


def test_progress_lines_at_fixed_points_of_a_run(tmp_path):
    """Units in flight count before they commit; the rate is measured from the last poll that saw nothing done
    (start-up time does not dilute it), the time left from the rate."""
    clock, run = Clock(), make_run(tmp_path)
    progress = Progress(run, report=lambda snap: None, clock=clock)
    clock.now = 5.0
    assert progress.poll().line() == "run j: items 0/1001 (0%)  - items/s  left ?  images 0  units 0/2  elapsed 5s"
    write_in_flight(tmp_path, run.context.run_id, {"s/t": {"items": 100, "images": 90}})
    clock.now = 10.0
    assert progress.poll().line() == (
        "run j: items 100/1001 (10%)  20.0 items/s  left 45s  images 90  units 0/2 (1 in flight)  elapsed 10s"
    )
    write_in_flight(tmp_path, run.context.run_id, {"s/t": {"items": 300, "images": 280}})
    clock.now = 20.0
    assert progress.poll().line() == (
        "run j: items 300/1001 (30%)  20.0 items/s  left 35s  images 280  units 0/2 (1 in flight)  elapsed 20s"
    )
    write_marker(tmp_path, "t", "2026-01-01T00:00:09+00:00", 999)  # committed: its marker replaces its heartbeat
    write_marker(tmp_path, "u1", "2026-01-01T00:00:09+00:00", 0)
    clock.now = 30.0
    snap = progress.poll()
    assert snap.line() == "run j: items 1001/1001 (100%)  40.0 items/s  left 0s  images 999  units 2/2  elapsed 30s"


def test_progress_reports_a_finished_snapshot_when_the_pipeline_ends(tmp_path):
    snaps = []
    with Progress(make_run(tmp_path), report=snaps.append, interval=60):
        write_marker(tmp_path, "t", "2026-01-01T00:00:09+00:00", 3)
    assert snaps[-1].finished and snaps[-1].done == 4 and snaps[-1].detail == "images 3  units 1/2"
    assert "took" in snaps[-1].line() and "left" not in snaps[-1].line()


def test_a_committed_tar_replaces_its_guess_in_the_total(tmp_path):
    progress = Progress(make_run(tmp_path), report=lambda snap: None, clock=Clock())
    assert progress.poll().total == 1 + 1000  # the tar's count is guessed (at most CONTAINER_ITEMS)
    write_marker(tmp_path, "t", "2026-01-01T00:00:09+00:00", 299)
    assert progress.poll().total == 1 + 300


def test_a_damaged_marker_is_skipped_until_its_unit_commits_again(tmp_path):
    progress = Progress(make_run(tmp_path), report=lambda snap: None, clock=Clock())
    write_marker(tmp_path, "u1", "2026-01-01T00:00:05+00:00", 20)
    marker = tmp_path / "units" / "source=s" / "u1.json"
    whole = marker.read_bytes()
    marker.write_bytes(whole[:17])  # cut short from outside
    assert progress.poll().detail == "images 0  units 0/2"
    marker.write_bytes(whole)  # the run redoes the unit and writes its marker again
    assert progress.poll().detail == "images 20  units 1/2"
