"""In-flight progress: every executor says, every few seconds, how far its units in flight have got.

    OUT/progress/run=RUN_ID/HOST-PID-N.json  {"written": ISO time, "units": {"SOURCE/UNIT": {"items", "images"}}}

`items` are the unit's items with an outcome so far (a sentence encoded, or failed or filtered), `images` its
frames encoded. The job's progress
display (lvm_data.job.progress) reads these beside the unit markers, so it moves while units are in flight,
not only when they commit, on every runner (a worker on another machine writes to the same output).
This is execution state, not output: readers of sentences and ledgers never look here, an executor deletes
its file when it closes and the driver removes the run's folder when the run ends. Writing it is best
effort: a failed write is skipped (the job never fails for its progress display).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from lvm_data import storage
from lvm_data.shards import layout

ROOT = "progress"
LOCAL_INTERVAL_S = 1.0
REMOTE_INTERVAL_S = 10.0  # an object store: one small write per worker every ten seconds

_numbers = itertools.count()
log = logging.getLogger(__name__)

Snapshot = Callable[[], dict[str, dict[str, int]]]


def run_folder(out: str, run_id: str) -> str:
    return layout.join(out, ROOT, f"run={run_id}")


class Heartbeat:
    """A thread writing `snapshot()` (unit name -> {"items", "images"}) to this process's file when it changes."""

    def __init__(self, out: str, run_id: str, snapshot: Snapshot, interval: float | None = None):
        host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "host"
        self.uri = layout.join(run_folder(out, run_id), f"{host}-{os.getpid()}-{next(_numbers)}.json")
        self.snapshot = snapshot
        self.interval = interval or (REMOTE_INTERVAL_S if storage.is_remote(out) else LOCAL_INTERVAL_S)
        self._stop = threading.Event()
        self._written: dict | None = None
        self._thread = threading.Thread(target=self._loop, name="lvm-data-heartbeat", daemon=True)
        self._thread.start()

    def beat(self) -> None:
        units = self.snapshot()
        if units == self._written:
            return
        try:
            storage.write_bytes(
                self.uri,
                json.dumps({"written": datetime.now(UTC).isoformat(timespec="seconds"), "units": units}).encode(),
            )
            self._written = units
        except Exception as err:  # noqa: BLE001 - progress is best effort; the units' commits are what count
            log.debug("progress file %s not written: %s", self.uri, err)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        try:
            storage.delete(self.uri)
        except Exception as err:  # noqa: BLE001 - the driver removes the folder at the end of the run anyway
            log.debug("progress file %s not removed: %s", self.uri, err)


def read_in_flight(out: str, run_id: str) -> dict[str, dict[str, int]]:
    """Unit name -> {"items", "images"} over every executor's latest file for this run."""
    units: dict[str, dict[str, int]] = {}
    for uri in storage.list_files(run_folder(out, run_id)):
        if not uri.endswith(".json") or uri.rsplit("/", 1)[-1].startswith("."):
            continue
        try:
            units.update(json.loads(storage.read_bytes(uri)).get("units", {}))
        except (OSError, ValueError):  # removed between listing and reading, or from another version
            continue
    return units


def remove_run_folder(out: str, run_id: str) -> None:
    for uri in storage.list_files(run_folder(out, run_id)):
        storage.delete(uri)
