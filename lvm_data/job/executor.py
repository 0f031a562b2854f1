"""The streaming unit executor: work units processed end to end in this process, stages overlapping.

    submit(work unit) -> reader thread: read refs, cut decode tasks ---> DecodePool (processes or threads):
    decode, filters, template ---> Encoder (one model per device, batches across units) ---> writer thread:
    the unit's Parquet files and ledger, then its marker (a token-space dedup source's unit is staged instead)

Several units are in flight at once (`units_in_flight`), so the decoders always have work and the encoder
takes frames from whichever unit has them; each unit commits the moment its last sentence is encoded.
Memory is bounded by the frames in flight (the decode queue and the encoder's `max_frames`), not by the
size of a unit or of the job: reading blocks when the decoders are behind, decoding when the encoder is.

Callers wait in `Batch`es (a Beam bundle is one): `submit(work, batch)` blocks while `units_in_flight`
units are in flight; `batch.done()` returns the markers committed so far, `batch.wait()` the rest, and
raises `UnitFailed` if one of its units could not be committed (a bug or a storage fault: bad media never
raise, they are ledger rows). A unit whose marker already exists for these inputs (a retried bundle) is
not redone. Nothing here knows about Beam: pipelines/tokenize.py wraps it in a DoFn, and one executor per
process serves every bundle of a job (`shared_executor`).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from lvm_data.curation.sentence_dedup import sentence_settings, sign_row
from lvm_data.job.config import batch_size_for, shard_size_of
from lvm_data.job.decoding import DecodePool, DecodeTask
from lvm_data.job.encoder import Encoder, models_for
from lvm_data.job.heartbeat import Heartbeat
from lvm_data.job.plan import WorkUnit
from lvm_data.job.runs import RunContext
from lvm_data.job.staging import StagedUnit, write_staged
from lvm_data.job.steps import Selection, Tokenized, finish_unit, unit_groups
from lvm_data.shards.ledger import ItemEvent
from lvm_data.shards.reader import read_marker
from lvm_data.shards.timings import EncoderClock, UnitTimings
from lvm_data.shards.writer import SentenceRow

DECODE_POOLS = ("auto", "processes", "threads")
ITEMS_PER_TASK = 8  # refs per decode task for templates that build items alone


class UnitFailed(RuntimeError):
    """A unit that could not be committed (the cause is chained); its items are redone by a rerun."""


@dataclass(frozen=True)
class ExecutorSettings:
    workers: int = 1
    pool: str = "processes"  # or threads
    units_in_flight: int = 3
    items_per_task: int = ITEMS_PER_TASK
    max_frames: int | None = None  # the encoder's queue (default: two batches, at least 64 frames)

    @classmethod
    def of(cls, ctx: RunContext, models: list) -> ExecutorSettings:
        """The job's settings, `auto` resolved: a worker per core (shared by the machine's SDK processes);
        decoder processes beside an asynchronous device (a GPU: the worker process only feeds it), threads
        beside a CPU encoder (which needs the cores: a process start and pickling per task cost it more than
        the GIL costs decoding)."""
        job = ctx.job
        workers = auto_workers(ctx.processes_per_machine) if job.decode_workers == "auto" else int(job.decode_workers)
        pool = job.decode_pool
        if pool == "auto":
            pool = "processes" if any(getattr(m, "asynchronous", False) for m in models) else "threads"
        largest = max((shard_size_of(job, src) for src in job.sources), default=1)
        return cls(workers=workers, pool=pool, units_in_flight=units_in_flight(workers, largest))


IN_FLIGHT_ITEMS = 100_000  # items of the units in flight, whose rows wait in memory for their commit


def units_in_flight(workers: int, unit_items: int) -> int:
    """Small units: enough in flight to keep every decoder busy (workers + 2); large ones (a unit of the default
    256 MB file holds ~600k rows, ~0.7 GB in memory): two, one reading while the other finishes."""
    return max(2, min(workers + 2, IN_FLIGHT_ITEMS // max(1, unit_items)))


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def auto_workers(processes_per_machine: int = 1) -> int:
    """Decode workers per process: the machine's cores shared by the SDK processes that run on it
    (0: one process per core)."""
    if processes_per_machine == 0:
        return 1
    return max(1, available_cpus() // processes_per_machine)


class Batch:
    """The units one caller waits for."""

    def __init__(self):
        self._cond = threading.Condition()
        self._open = 0
        self._done: list[dict] = []
        self._failed: list[tuple[str, BaseException]] = []

    def _add(self) -> None:
        with self._cond:
            self._open += 1

    def _finish(self, marker: dict | None, failure: tuple[str, BaseException] | None = None) -> None:
        with self._cond:
            self._open -= 1
            if failure is not None:
                self._failed.append(failure)
            else:
                assert marker is not None, "a unit finishes with its marker or a failure"
                self._done.append(marker)
            self._cond.notify_all()

    def done(self) -> list[dict]:
        """Markers of the units committed since the last call (does not wait)."""
        with self._cond:
            out, self._done = self._done, []
            return out

    def wait(self) -> list[dict]:
        """Wait for every unit of the batch; the markers not returned before. Raises UnitFailed."""
        with self._cond:
            while self._open:
                self._cond.wait()
            if self._failed:
                name, err = self._failed[0]
                more = f" (and {len(self._failed) - 1} more units)" if len(self._failed) > 1 else ""
                raise UnitFailed(f"unit {name} was not committed{more}: {type(err).__name__}: {err}") from err
            out, self._done = self._done, []
            return out


@dataclass(eq=False)
class UnitState:
    """A unit in flight: what its commit needs, and how much of it is still on its way."""

    work: WorkUnit
    batch: Batch
    expected: list[str] = field(default_factory=list)
    events: list[ItemEvent] = field(default_factory=list)
    rows: list[SentenceRow] = field(default_factory=list)
    signatures: list = field(default_factory=list)
    reading: bool = True
    open_tasks: int = 0
    open_sentences: int = 0
    error: BaseException | None = None
    finished: bool = False
    done_keys: set[str] = field(default_factory=set)  # items with an outcome: progress in flight (heartbeat)
    images_encoded: int = 0
    timings: UnitTimings = field(default_factory=UnitTimings)
    lock: threading.Lock = field(default_factory=threading.Lock)


class UnitExecutor:
    def __init__(
        self,
        ctx,
        selections: dict[str, Selection],
        settings: ExecutorSettings | None = None,
        models: list | None = None,
        merge: bool = False,
    ):
        self.ctx, self.selections, self.merge = ctx, selections, merge
        models = models if models is not None else models_for(ctx.job)
        self.settings = settings or ExecutorSettings.of(ctx, models)
        if self.settings.pool not in DECODE_POOLS[1:]:
            raise ValueError(f"decode_pool {self.settings.pool!r}: use one of {', '.join(DECODE_POOLS)}")
        self.sentences = sentence_settings(ctx.job.curation)
        self._runtimes = {s.name: ctx.runtime(s.name) for s in ctx.job.sources}
        self.pool = DecodePool(ctx, self.settings.workers, isolated=self.settings.pool == "processes")
        self.encoder = Encoder(
            models,
            batch_size_for(ctx.job, models[0].runs_on()),
            max_frames=self.settings.max_frames,
            upstream_busy=self._decoding,
        )
        self._encoder_clock = EncoderClock(len(models), lambda: self.encoder.stats.busy_s)
        self._in_flight: set[UnitState] = set()
        self._in_flight_lock = threading.Lock()
        self._heartbeat = Heartbeat(ctx.out, ctx.run_id, self.progress) if ctx.run_id else None
        self._slots = threading.BoundedSemaphore(self.settings.units_in_flight)
        self._readers = 0
        self._readers_lock = threading.Lock()
        self._commits: queue.Queue = queue.Queue()
        self._writer = threading.Thread(target=self._write_units, name="lvm-data-write", daemon=True)
        self._writer.start()
        self._closed = False

    # --- the caller's side ---------------------------------------------------------------------------------

    def submit(self, work: WorkUnit, batch: Batch) -> None:
        """Start `work` (blocks while `units_in_flight` units are in flight); its marker goes to `batch`."""
        batch._add()
        if not self.merge:
            marker = read_marker(self.ctx.out, work.source, work.unit)
            if (
                marker is not None
                and marker.get("spec_digest") == work.spec_digest
                and marker.get("config_hash") == self.ctx.config_hash
            ):
                batch._finish(marker)  # committed by an earlier attempt of this bundle
                return
        self._slots.acquire()
        state = UnitState(work, batch)
        with self._in_flight_lock:
            self._in_flight.add(state)
        threading.Thread(target=self._read_unit, args=(state,), name=f"lvm-data-read-{work.name}", daemon=True).start()

    def run(self, units: list[WorkUnit]) -> list[dict]:
        """Process `units` and wait for all of them; their markers (staged records for pooled sources)."""
        batch = Batch()
        for work in units:
            self.submit(work, batch)
        return batch.wait()

    def progress(self) -> dict[str, dict[str, int]]:
        """Unit name -> items with an outcome (encoded, failed or filtered) and images encoded, for the units in
        flight."""
        with self._in_flight_lock:
            states = list(self._in_flight)
        return {s.work.name: {"items": len(s.done_keys), "images": s.images_encoded} for s in states}

    def close(self) -> None:
        """Stop the threads and decoder processes (after the units in flight)."""
        if self._closed:
            return
        self._closed = True
        for _ in range(self.settings.units_in_flight):
            self._slots.acquire()  # every unit released its slot: nothing is in flight
        self.pool.close()
        self.encoder.close()
        self._commits.put(None)
        self._writer.join()
        if self._heartbeat is not None:
            self._heartbeat.close()

    # --- stages --------------------------------------------------------------------------------------------

    def _read_unit(self, state: UnitState) -> None:
        with self._readers_lock:
            self._readers += 1
        try:
            work = state.work
            rt = self._runtimes[work.source]
            tasks = self._tasks(unit_groups(rt, work, self.selections[work.source]), work.grouped)
            while (groups := _timed_next(tasks, state)) is not None:
                with state.lock:
                    state.expected += [ref.key for group in groups for ref in group]
                    state.open_tasks += 1
                task = DecodeTask(work.source, groups)
                self.pool.submit(task, lambda result, s=state: self._decoded(s, result))
        except Exception as err:  # noqa: BLE001 - a bug or storage fault: this unit fails, visibly
            with state.lock:
                state.error = state.error or err
        finally:
            with self._readers_lock:
                self._readers -= 1
            with state.lock:
                state.reading = False
            self._maybe_finish(state)
            self.encoder.wake()

    def _tasks(self, groups: Iterator[list], grouped: bool) -> Iterator[tuple[tuple, ...]]:
        """Decode tasks: a grouping template's group each; for other templates `items_per_task` refs."""
        chunk: list[tuple] = []
        for group in groups:
            chunk.append(tuple(group))
            if grouped or len(chunk) >= self.settings.items_per_task:
                yield tuple(chunk)
                chunk = []
        if chunk:
            yield tuple(chunk)

    def _decoding(self) -> bool:
        return self.pool.busy or self._readers > 0

    def _decoded(self, state: UnitState, result) -> None:
        """On a decode worker's thread: events to the unit, sentences to the encoder."""
        if isinstance(result, BaseException):
            with state.lock:
                state.error = state.error or result
        else:
            with state.lock:
                state.events += result.events
                state.done_keys.update(e.key for e in result.events)
                state.open_sentences += len(result.pendings)
                state.timings.decode_s += result.seconds
            for pending in result.pendings:
                self.encoder.put(pending, lambda t, s=state: self._encoded(s, t))
        with state.lock:
            state.open_tasks -= 1
        self._maybe_finish(state)
        if not self.pool.busy:
            self.encoder.wake()

    def _encoded(self, state: UnitState, t: Tokenized) -> None:
        """On an encoder thread: the sentence's row and events to its unit."""
        signature = sign_row(self.sentences, t.source, t.unit, t.row) if t.row is not None else None
        with state.lock:
            state.events += t.events
            if t.row is not None:
                state.rows.append(t.row)
            if signature is not None:
                state.signatures.append(signature)
            state.done_keys.update(e.key for e in t.events)
            state.images_encoded += t.row.n_images if t.row is not None else 0
            state.timings.encode_s += t.encode_s
            state.open_sentences -= 1
        self._maybe_finish(state)

    def _maybe_finish(self, state: UnitState) -> None:
        with state.lock:
            if state.finished or state.reading or state.open_tasks or state.open_sentences:
                return
            state.finished = True
        self._commits.put(state)

    def _write_units(self) -> None:
        while (state := self._commits.get()) is not None:
            work = state.work
            try:
                if state.error is not None:
                    raise state.error
                marker = self._commit(state)
            except Exception as err:  # noqa: BLE001 - reported to the caller's batch
                state.batch._finish(None, (work.name, err))
            else:
                state.batch._finish(marker)
            finally:
                with self._in_flight_lock:
                    self._in_flight.discard(state)
                self._slots.release()

    def _commit(self, state: UnitState) -> dict:
        work, ctx = state.work, self.ctx
        write_started = time.perf_counter()

        def timings() -> dict:
            return state.timings.marker(write_started, self._encoder_clock.interval())

        if ctx.pooled(work.source):
            return write_staged(
                ctx.out,
                StagedUnit(
                    work.source,
                    work.unit,
                    work.spec_digest,
                    ctx.config_hash,
                    state.expected,
                    state.events,
                    state.rows,
                    state.signatures,
                    timings=timings(),
                ),
            )
        marker, _tallies = finish_unit(
            ctx.unit_commit(work.source, work.unit, work.spec_digest),
            state.expected,
            state.events,
            state.rows,
            merge=self.merge and self.selections[work.source].merges(work.unit),
            curation=ctx.unit_curation(work.source),
            timings=timings,
        )
        return marker


def _timed_next(tasks: Iterator, state: UnitState):
    """The next decode task (None at the end), its reading time added to the unit's `read_s`."""
    started = time.perf_counter()
    groups = next(tasks, None)
    elapsed = time.perf_counter() - started
    with state.lock:
        state.timings.read_s += elapsed
    return groups


_shared: dict[tuple, tuple[UnitExecutor, int]] = {}
_shared_lock = threading.Lock()


def shared_executor(ctx: RunContext, selections: dict[str, Selection], merge: bool) -> UnitExecutor:
    """This process's executor for the run (one per job output and configuration); `release` it when done."""
    key = (ctx.run_id, ctx.config_hash, ctx.out, merge)
    with _shared_lock:
        executor, users = _shared.get(key, (None, 0))
        if executor is None:
            executor = UnitExecutor(ctx, selections, merge=merge)
        _shared[key] = (executor, users + 1)
        return executor


def release_executor(executor: UnitExecutor) -> None:
    """One user fewer; the last one closes it (decoder processes end, the models stay loaded)."""
    with _shared_lock:
        for key, (shared, users) in list(_shared.items()):
            if shared is executor:
                if users > 1:
                    _shared[key] = (shared, users - 1)
                    return
                del _shared[key]
                break
    executor.close()
