"""The decode pool: workers that turn groups of item refs into sentences (decode, filters, template).

A `DecodeTask` is some groups of one source's refs (a group is built together: one ref for templates
that build items alone, a whole group for grouping templates). A worker runs `run_task`, i.e.
`lvm_data.job.steps.prepare` per group, and hands back (Pending sentences, ItemEvents).

Workers are threads that each drive one decoder process (`processes`, the default: fresh `python -c`
interpreters from lvm_data.media.isolate, never fork) or run the task themselves (`threads`). In a
process, a decoder that crashes or hangs past the timeout costs only its task: the task is redone one
group at a time, and a group that still crashes has its refs probed one by one, so only the culprit
fails (`decoder_crash` / `timeout`) and the rest of the group is built without it.

`submit` blocks while `2 x workers` tasks wait: that is the executor's backpressure on reading.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lvm_data.items import ItemRef
from lvm_data.job.runs import RunContext
from lvm_data.job.steps import Pending, SourceRuntime, prepare, screen_item
from lvm_data.media.isolate import IsolatedWorker, WorkerStartError
from lvm_data.outcomes import ItemError, Reason
from lvm_data.shards.ledger import ItemEvent

BASE_TIMEOUT_S = 300.0  # a task's time limit: this, plus ITEM_TIMEOUT_S per item
ITEM_TIMEOUT_S = 120.0
RETRIED = (Reason.DECODER_CRASH, Reason.TIMEOUT)
# Decoder processes run below the worker's own priority: the worker feeds the device (or, on CPU, is the
# encoder, whose threads lose far more than the decoders gain when the two fight over the same cores).
DECODER_NICE = 10


@dataclass(frozen=True)
class DecodeTask:
    source: str
    groups: tuple[tuple[ItemRef, ...], ...]

    @property
    def n_items(self) -> int:
        return sum(len(g) for g in self.groups)


@dataclass
class Decoded:
    """What a task gave: sentences to encode and events of items that failed or were filtered."""

    pendings: list[Pending]
    events: list[ItemEvent]
    seconds: float = 0.0  # the task's time on its worker (decoder process round trip included)


_runtimes: collections.OrderedDict[tuple[str, str], SourceRuntime] = collections.OrderedDict()
_runtimes_lock = threading.Lock()
KEPT_RUNTIMES = 16  # sources of the latest runs a process serves


def runtime_of(ctx: RunContext, source: str) -> SourceRuntime:
    """The source's runtime, built once per run and process (blocklists are read once, not once per task)."""
    key = (ctx.run_id, source)
    with _runtimes_lock:
        if key not in _runtimes:
            _runtimes[key] = ctx.runtime(source)
            while len(_runtimes) > KEPT_RUNTIMES:
                _runtimes.popitem(last=False)
        _runtimes.move_to_end(key)
        return _runtimes[key]


def run_task(ctx: RunContext, task: DecodeTask) -> Decoded:
    """Decode, filter and build every group of `task` (in whichever process calls it)."""
    rt, settings = runtime_of(ctx, task.source), ctx.settings()
    out = Decoded([], [])
    for group in task.groups:
        pendings, events = prepare(rt, settings, list(group))
        out.pendings += pendings
        out.events += events
    return out


def probe_ref(ctx: RunContext, source: str, ref: ItemRef) -> bool:
    """Decode one ref and throw the result away (finding the item that crashes a group's decoder)."""
    screen_item(runtime_of(ctx, source), ctx.settings(), ref)
    return True


def task_timeout(task: DecodeTask) -> float:
    return BASE_TIMEOUT_S + ITEM_TIMEOUT_S * task.n_items


class DecodePool:
    """`workers` threads taking tasks from a bounded queue. `done(result)` is called on the worker's thread
    with the task's `Decoded`, or with the exception that kept it from running (a bug, not bad media)."""

    def __init__(self, ctx, workers: int, isolated: bool = True):
        if workers < 1:
            raise ValueError(f"decode workers must be at least 1, got {workers}")
        self.ctx, self.workers, self.isolated = ctx, workers, isolated
        self._tasks: queue.Queue = queue.Queue(maxsize=2 * workers)
        self._busy = 0
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._serve, name=f"lvm-data-decode-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, task: DecodeTask, done: Callable[[Decoded | Exception], None]) -> None:
        with self._lock:
            self._busy += 1
        self._tasks.put((task, done))

    @property
    def busy(self) -> bool:
        """Whether a task waits or runs (the encoder flushes a partial batch only when nothing is coming)."""
        return self._busy > 0

    def close(self) -> None:
        for _ in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            thread.join()

    def _serve(self) -> None:
        worker = IsolatedWorker(nice=DECODER_NICE) if self.isolated else None
        try:
            while (item := self._tasks.get()) is not None:
                task, done = item
                started = time.perf_counter()
                try:
                    result = self._run(worker, task)
                    result.seconds = time.perf_counter() - started
                except Exception as err:  # noqa: BLE001 - reported to the task's unit, which fails visibly
                    result = err
                finally:
                    with self._lock:
                        self._busy -= 1
                done(result)
        finally:
            if worker is not None:
                worker.close()

    def _run(self, worker: IsolatedWorker | None, task: DecodeTask) -> Decoded:
        if worker is None:
            return run_task(self.ctx, task)
        try:
            return worker.call(run_task, self.ctx, task, timeout_s=task_timeout(task), name=f"decode {task.source}")
        except WorkerStartError as err:  # no decoder process can run here: the unit fails, its items are not blamed
            raise RuntimeError(
                f"{err.detail}; set `decode_pool: threads` in the job file to decode in the worker process instead"
            ) from err
        except ItemError as err:
            if err.reason not in RETRIED:
                raise
            return self._redo(worker, task, err)

    def _redo(self, worker: IsolatedWorker, task: DecodeTask, err: ItemError) -> Decoded:
        """A task whose decoder process died or hung: each group alone; a group that fails again, ref by ref."""
        if len(task.groups) > 1:
            out = Decoded([], [])
            for group in task.groups:
                part = self._run(worker, DecodeTask(task.source, (group,)))
                out.pendings += part.pendings
                out.events += part.events
            return out
        assert task.groups, "a decode task holds at least one group"
        group = task.groups[0]
        if len(group) == 1:
            return Decoded([], [ItemEvent(group[0].key, group[0].uri, err.outcome())])
        culprits, events = set(), []
        for ref in group:
            try:
                worker.call(probe_ref, self.ctx, task.source, ref, timeout_s=ITEM_TIMEOUT_S, name=f"probe {ref.uri}")
            except ItemError as probe:
                if probe.reason not in RETRIED:
                    raise
                culprits.add(ref.key)
                events.append(ItemEvent(ref.key, ref.uri, probe.outcome()))
        rest = DecodeTask(task.source, (tuple(r for r in group if r.key not in culprits),))
        if rest.groups[0]:
            try:
                part = worker.call(run_task, self.ctx, rest, timeout_s=task_timeout(rest), name=f"decode {task.source}")
                return Decoded(part.pendings, events + part.events)
            except ItemError as again:
                if again.reason not in RETRIED:
                    raise
                err = again
        # the group crashes its decoder even without the items that crash alone: none of it can be built
        failed = [ItemEvent(r.key, r.uri, err.outcome()) for r in rest.groups[0]]
        return Decoded([], events + failed)
