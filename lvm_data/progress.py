"""Progress of a long command as plain values: how much is done of how much, how fast, how long is left.

Commands count their work on a `Meter` (items of a job, files of an audit, steps of training); it hands a
`Snapshot` to a `report` callable at most every `interval` seconds, and a last one when it closes. Nothing
here prints or knows about terminals: lvm_data.cli.display turns snapshots into a live bar or log lines.
The clock is injectable, so tests check the snapshots at fixed points.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Snapshot:
    """`done` of `total` `what` (total None: not known yet) after `elapsed_s`; `rate` per second measured
    since the first thing was done (start-up time, e.g. loading a model, does not dilute it)."""

    task: str
    what: str
    done: int
    total: int | None
    elapsed_s: float
    rate: float | None = None
    detail: str = ""  # e.g. "images 120  units 1/11"
    finished: bool = False

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate; None while the rate or the total is unknown."""
        if self.total is None or not self.rate:
            return None
        return max(0.0, (self.total - self.done) / self.rate)

    def line(self) -> str:
        """One log line: 'TASK: items 120/1000 (12%)  3.4 items/s  left 4m18s  images 120  elapsed 35s'."""
        count = f"{self.what} {self.done}" + ("" if self.total is None else f"/{self.total}")
        if self.fraction is not None:
            count += f" ({self.fraction:.0%})"
        parts = [f"{self.task}: {count}"]
        parts.append(f"{self.rate:.1f} {self.what}/s" if self.rate else f"- {self.what}/s")
        if not self.finished:
            parts.append(f"left {duration(self.eta_s)}" if self.eta_s is not None else "left ?")
        if self.detail:
            parts.append(self.detail)
        parts.append(f"{'took' if self.finished else 'elapsed'} {duration(self.elapsed_s)}")
        return "  ".join(parts)


def duration(seconds: float | None) -> str:
    """'42s', '4m18s', '2h05m'."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


Report = Callable[[Snapshot], None]


class Meter:
    """A thread-safe counter that reports snapshots. Use `advance` as work is done, or `set` with absolute
    counts (for a poller); as a context manager it reports every `interval` seconds and once at the end.
    `done`: work finished before this meter (a resumed run's steps), counted in `done` but not in the rate."""

    def __init__(
        self,
        task: str,
        what: str,
        total: int | None,
        report: Report,
        *,
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        done: int = 0,
    ):
        self.task, self.what, self.total, self.report = task, what, total, report
        self.interval, self.clock = interval, clock
        self.done, self.detail, self._before = done, "", done
        self._start = clock()
        self._first: tuple[float, int] | None = None  # (time, done) the rate is measured from
        self._idle_until = self._start  # a poller's last sight of nothing done
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def advance(self, n: int = 1, detail: str | None = None) -> None:
        with self._lock:
            self._mark_first()
            self.done += n
            self.detail = self.detail if detail is None else detail

    def set(self, done: int, total: int | None = None, detail: str | None = None) -> None:
        with self._lock:
            self.done = done
            if done <= self._before:
                self._idle_until = self.clock()
            elif self._first is None:  # the work seen now was done since the last poll that saw none
                self._first = (self._idle_until, self._before)
            self.total = self.total if total is None else total
            self.detail = self.detail if detail is None else detail

    def _mark_first(self) -> None:
        if self._first is None:
            self._first = (self.clock(), self.done)

    def snapshot(self, finished: bool = False) -> Snapshot:
        with self._lock:
            now = self.clock()
            rate = None
            if self._first is not None:
                t0, d0 = self._first
                if now > t0 and self.done > d0:
                    rate = (self.done - d0) / (now - t0)
            return Snapshot(self.task, self.what, self.done, self.total, now - self._start, rate, self.detail, finished)

    def tick(self) -> None:
        """Report the current snapshot (a poller calls this after `set`)."""
        self.report(self.snapshot())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def __enter__(self) -> Meter:
        self._thread = threading.Thread(target=self._loop, name=f"lvm-data-progress-{self.task}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.report(self.snapshot(finished=exc[0] is None))


class Poller:
    """A progress that is read, not counted: `poll()` (a subclass's) sets `self.meter` from what it finds (unit
    markers, shard markers) and returns its snapshot. As a context manager it polls every `meter.interval` seconds
    on a thread, and once more at the end for the finished snapshot."""

    meter: Meter

    def poll(self) -> Snapshot:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.wait(self.meter.interval):
            self.meter.report(self.poll())

    def __enter__(self) -> Poller:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lvm-data-progress-{self.meter.task}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()
        self.meter.report(self.meter.snapshot(finished=exc[0] is None))


def silent(snapshot: Snapshot) -> None:
    """A report that shows nothing (library callers that want no progress)."""
