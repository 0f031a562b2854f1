"""The encoder stage: sentences from every unit in flight, batched by frames, through one model per device.

`Encoder.put(pending, done)` queues a built sentence; encoder threads (one per device, each with its own
model copy) take whole sentences up to `batch_size` frames, so a batch mixes units and never waits for a
unit boundary, encode them and call `done(Tokenized)` for each. A failing batch is retried sentence by
sentence (`lvm_data.job.steps.tokenize`): a sentence that still fails is a `tokenize_error` of its items.

On an asynchronous device (CUDA; the benchmark's stand-in) the next batch is started (pinned host buffer,
copy on its own stream: `Tokenizer.encode_start`) before the previous one's codes are read, so the device
always has a batch queued while this thread hands out results. A partial batch
waits up to `linger_s` for more frames while the decoders are busy, and goes at once when they are not.

Memory is bounded here: `put` blocks while `max_frames` frames are queued (a sentence larger than that
still passes alone), so decoding can never run more than that ahead of the device.

Models are loaded once per process and device (`models_for`): every executor of a process, and every
Beam bundle it serves, share them, so the encoder is compiled once per process.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lvm_data import tokenizer as lvm_tokenizer
from lvm_data.job.config import JobConfig, batch_size_for
from lvm_data.job.steps import Pending, Tokenized, batch_frames, tokenize, tokenized
from lvm_data.tokenizer.standin import PREFIX as STANDIN_PREFIX

LINGER_S = 0.05

_models: dict[tuple, object] = {}
_models_lock = threading.Lock()


def devices_for(device: str, tokenizer: str = "") -> list[str]:
    """The devices to encode on: 'auto' and 'cuda' mean every visible GPU (one model copy each), 'auto' on a
    machine without one the CPU; 'cuda:N' and 'cpu' that device. 'cuda' without a GPU is kept, so that loading
    fails with the reason (the device is never silently downgraded)."""
    import torch

    if tokenizer.startswith(STANDIN_PREFIX) or device == "cpu" or ":" in device:
        return ["cpu"] if tokenizer.startswith(STANDIN_PREFIX) else [device]
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count:
        return [f"cuda:{i}" for i in range(count)]
    return ["cpu"] if device == "auto" else [device]


def models_for(job: JobConfig) -> list:
    """One loaded tokenizer per device of the job, shared by everything in this process."""
    out = []
    for device in devices_for(job.device, job.tokenizer):
        batch_size = batch_size_for(job, device)
        key = (job.tokenizer, device, job.dtype, batch_size, str(job.compile))
        with _models_lock:
            if key not in _models:
                _models[key] = lvm_tokenizer.load(
                    job.tokenizer, device=device, dtype=job.dtype, batch_size=batch_size, compile=job.compile
                )
            out.append(_models[key])
    return out


@dataclass
class EncoderStats:
    batches: int = 0
    frames: int = 0
    busy_s: float = 0.0  # seconds a model was encoding (on CUDA: from start to codes back; overlaps once)
    peak_frames: int = 0  # most frames held at once: queued plus in the batches being encoded


Done = Callable[[Tokenized], None]


class Encoder:
    def __init__(
        self,
        models: list,
        batch_size: int,
        *,
        max_frames: int | None = None,
        upstream_busy: Callable[[], bool] = lambda: False,
        linger_s: float = LINGER_S,
    ):
        if not models:
            raise ValueError("the encoder needs at least one model")
        self.batch_size = batch_size
        self.max_frames = max_frames or max(2 * batch_size, 64)
        self.stats = EncoderStats()
        self._upstream_busy, self._linger_s = upstream_busy, linger_s
        self._queue: collections.deque[tuple[Pending, Done]] = collections.deque()
        self._queued = 0  # frames in the queue
        self._held = 0  # frames taken into batches not yet delivered
        self._last_end: dict[int, float] = {}  # per model: when its latest batch's codes came back
        self._closed = False
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._serve, args=(model,), name=f"lvm-data-encode-{i}", daemon=True)
            for i, model in enumerate(models)
        ]
        for thread in self._threads:
            thread.start()

    def put(self, pending: Pending, done: Done) -> None:
        """Queue a sentence; blocks while the queue holds `max_frames` frames."""
        n = pending.n_images
        with self._cond:
            while self._queued and self._queued + n > self.max_frames and not self._closed:
                self._cond.wait()
            if self._closed:
                raise RuntimeError("the encoder is closed")
            self._queue.append((pending, done))
            self._queued += n
            self.stats.peak_frames = max(self.stats.peak_frames, self._queued + self._held)
            self._cond.notify_all()

    def wake(self) -> None:
        """Something upstream changed (decoders went idle): a lingering partial batch may go now."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Encode what is queued, then stop the threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    def _serve(self, model) -> None:
        if not getattr(model, "asynchronous", False):
            while (batch := self._take(block=True)) is not None:
                self._deliver(model, batch, None, time.perf_counter())
            return
        in_flight = None  # (batch, job, started): queued on the device, codes not read yet
        while True:
            batch = self._take(block=in_flight is None)
            if batch is None and in_flight is None:
                return
            started = (batch, *self._start(model, batch)) if batch else None
            if in_flight is not None:
                self._deliver(model, *in_flight)
            in_flight = started

    def _start(self, model, batch) -> tuple[object, float]:  # (device job or None, started)
        start = time.perf_counter()
        try:
            return model.encode_start(batch_frames([p for p, _ in batch])), start
        except Exception:  # noqa: BLE001 - _deliver retries the batch sentence by sentence
            return None, start

    def _deliver(self, model, batch, job, start: float) -> None:
        pendings = [p for p, _ in batch]
        results = None
        if job is not None:
            try:
                results = tokenized(pendings, job.result(), model.runs_on())
            except Exception:  # noqa: BLE001 - retried below, sentence by sentence
                results = None
        if results is None:
            results = tokenize(model, pendings)
        frames = sum(p.n_images for p in pendings)
        end = time.perf_counter()
        # an asynchronous device's batches overlap (the next one starts before this one's codes are read):
        # count the union of their intervals, so busy time never exceeds the time that passed
        elapsed = end - max(start, self._last_end.get(id(model), 0.0))
        self._last_end[id(model)] = end
        with self._cond:
            self._held -= frames
            self.stats.batches += 1
            self.stats.frames += frames
            self.stats.busy_s += elapsed
            self._cond.notify_all()
        for (pending, done), result in zip(batch, results, strict=True):
            result.encode_s = elapsed * pending.n_images / max(frames, 1)
            done(result)

    def _take(self, block: bool) -> list[tuple[Pending, Done]] | None:
        """The next batch: [] when nothing is queued and `block` is false, None once closed and drained."""
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                if not block:
                    return []
                self._cond.wait()
            deadline = time.monotonic() + self._linger_s
            while self._queued < self.batch_size and not self._closed and self._upstream_busy():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch, frames = [], 0
            while self._queue and (not batch or frames + self._queue[0][0].n_images <= self.batch_size):
                item = self._queue.popleft()
                batch.append(item)
                frames += item[0].n_images
            self._queued -= frames
            self._held += frames
            self._cond.notify_all()
            return batch
