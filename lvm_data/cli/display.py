"""How progress is shown to a person (the command layer's side of lvm_data.progress).

On a terminal: a live bar drawn by rich (task, bar, done/total and percentage, rate, time left, details,
elapsed), redrawn in place. Anywhere else (CI logs, nohup, a Dataflow launcher's log): one plain line
every `log_every` seconds and a last one when the work ends, so a log shows the rate without flooding.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from lvm_data.progress import Snapshot, duration

if TYPE_CHECKING:
    from rich.progress import TaskID

LOG_EVERY_S = 30.0


class Display:
    """A `report` for Meters: `Display()(snapshot)`. Close it (or use it as a context manager) when done."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        terminal: bool | None = None,
        log_every: float = LOG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.log_every, self.clock = log_every, clock
        self._last_line: dict[str, float] = {}
        self._bars = None  # rich.progress.Progress, started on the first snapshot
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, snap: Snapshot) -> None:
        if self.terminal:
            self._draw(snap)
        else:
            self._log(snap)

    def _log(self, snap: Snapshot) -> None:
        now = self.clock()
        last = self._last_line.get(snap.task)
        if snap.finished or last is None or now - last >= self.log_every:
            self._last_line[snap.task] = now
            print(snap.line(), file=self.stream, flush=True)

    def _draw(self, snap: Snapshot) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        if self._bars is None:
            self._bars = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[count]}"),
                TextColumn("{task.fields[speed]}"),
                TextColumn("{task.fields[left]}"),
                TextColumn("{task.fields[detail]}"),
                TextColumn("{task.fields[elapsed]}"),
                console=Console(file=self.stream),
                auto_refresh=False,
            )
            self._bars.start()
        fields = _fields(snap)
        if snap.task not in self._tasks:
            self._tasks[snap.task] = self._bars.add_task(snap.task, total=snap.total, completed=snap.done, **fields)
        else:
            self._bars.update(self._tasks[snap.task], total=snap.total, completed=snap.done, **fields)
        self._bars.refresh()

    def echo(self, line: str) -> None:
        """A log line of the command (on stdout): above the live bars while they are drawn on a terminal."""
        if self._bars is not None:
            self._bars.console.print(line, markup=False, highlight=False)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fields(snap: Snapshot) -> dict[str, Any]:  # rich's task fields
    count = f"{snap.done}" + ("" if snap.total is None else f"/{snap.total}") + f" {snap.what}"
    if snap.fraction is not None:
        count += f" {snap.fraction:.0%}"
    left = "" if snap.finished else f"left {duration(snap.eta_s)}"
    return {
        "count": count,
        "speed": f"{snap.rate:.1f}/s" if snap.rate else "-/s",
        "left": left,
        "detail": snap.detail,
        "elapsed": duration(snap.elapsed_s),
    }
