"""Progress values (lvm_data.progress) and how they are shown (lvm_data.cli.display), at fixed clock points."""

import io

from lvm_data.cli.display import Display
from lvm_data.progress import Meter, Snapshot, duration


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_duration_reads_as_seconds_minutes_or_hours():
    assert [duration(s) for s in (None, 0, 42.4, 258, 7500)] == ["?", "0s", "42s", "4m18s", "2h05m"]


def test_snapshot_line_has_count_share_rate_time_left_and_detail():
    snap = Snapshot("audit", "files", 120, 1000, 35.0, rate=3.4, detail="bytes 1.2 MB")
    assert snap.line() == "audit: files 120/1000 (12%)  3.4 files/s  left 4m19s  bytes 1.2 MB  elapsed 35s"
    assert Snapshot("train", "steps", 7, None, 3.0).line() == "train: steps 7  - steps/s  left ?  elapsed 3s"
    done = Snapshot("run j", "items", 10, 10, 61.0, rate=0.2, finished=True)
    assert done.line() == "run j: items 10/10 (100%)  0.2 items/s  took 1m01s"


def test_meter_rate_starts_at_the_first_work_done():
    clock, snaps = Clock(), []
    meter = Meter("train", "steps", 100, snaps.append, clock=clock)
    clock.now = 60.0  # loading a model: no step yet
    meter.advance(1)
    clock.now = 70.0
    meter.advance(10)
    snap = meter.snapshot()
    assert (snap.done, round(snap.rate, 2), round(snap.eta_s), snap.elapsed_s) == (11, 1.1, 81, 70.0)


def test_a_resumed_meter_counts_earlier_work_but_times_only_its_own():
    clock, snaps = Clock(), []
    meter = Meter("train", "steps", 600, snaps.append, clock=clock, done=300)  # resumed at step 300
    assert meter.snapshot().rate is None  # nothing done by this meter yet
    clock.now = 5.0  # restoring the checkpoint
    meter.advance(1)
    clock.now = 25.0
    meter.advance(9)
    snap = meter.snapshot()
    assert (snap.done, snap.rate, snap.eta_s) == (310, 0.5, 580.0)


def test_a_resumed_poller_s_rate_counts_only_what_it_sees_done_after_the_start():
    clock, snaps = Clock(), []
    meter = Meter("mix m", "shards", 20, snaps.append, clock=clock, done=8)  # 8 shards written by the first run
    meter.set(8)
    assert meter.snapshot().rate is None
    clock.now = 30.0
    meter.set(8)  # still writing the first shard of this run
    clock.now = 40.0
    meter.set(10)
    assert (meter.snapshot().done, meter.snapshot().rate) == (10, 0.2)  # 2 new since the poll that saw none


def test_display_in_a_log_writes_a_line_every_interval_and_the_last_one():
    clock, stream = Clock(), io.StringIO()
    display = Display(stream, terminal=False, log_every=30, clock=clock)
    for t in range(0, 100, 5):
        clock.now = float(t)
        display(Snapshot("run j", "items", t, 100, float(t)))
    display(Snapshot("run j", "items", 100, 100, 100.0, rate=1.0, finished=True))
    lines = stream.getvalue().splitlines()
    assert [line.split("  ")[0] for line in lines] == [
        "run j: items 0/100 (0%)",
        "run j: items 30/100 (30%)",
        "run j: items 60/100 (60%)",
        "run j: items 90/100 (90%)",
        "run j: items 100/100 (100%)",
    ]


def test_display_on_a_terminal_draws_a_bar_with_the_same_figures():
    stream = io.StringIO()
    with Display(stream, terminal=True) as display:
        display(Snapshot("run j", "items", 30, 100, 12.0, rate=2.5, detail="images 28  units 1/4"))
    text = stream.getvalue()
    assert "run j" in text and "30/100 items 30%" in text and "2.5/s" in text and "left 28s" in text
    assert "images 28  units 1/4" in text
