"""The streaming executor and its stages: batches that span units, bounded memory, decoder crashes that
cost one item, units that commit as they finish, failures that name their unit, and the same output as
the plain loop (the code path of the landed main)."""

import threading
import time

import numpy as np
import pytest

from benchmarks.pipeline import write_photos
from lvm_data.items import Frame, ItemRef, Part
from lvm_data.job import decoding
from lvm_data.job import executor as executor_module
from lvm_data.job.config import parse_job_text
from lvm_data.job.decoding import DecodePool, DecodeTask
from lvm_data.job.encoder import Encoder
from lvm_data.job.executor import ExecutorSettings, UnitExecutor, UnitFailed
from lvm_data.job.loop import LocalExecutor
from lvm_data.job.runs import open_run
from lvm_data.job.steps import Pending
from lvm_data.media.isolate import WorkerStartError
from lvm_data.media.samples import photos
from lvm_data.outcomes import ItemError, Reason
from lvm_data.sentences.base import Sentence
from lvm_data.shards.reader import list_markers, read_ledger, read_sentences
from lvm_data.testing import images_source, job_text, write_corpus
from lvm_data.tokenizer import load
from pipelines.tokenize import run_job


class FakeModel:
    """Codes = the first pixel of each frame; records the batches it saw and can fail on a value."""

    asynchronous = False

    def __init__(self, fail_on: int | None = None, gate: threading.Event | None = None):
        self.batches, self.fail_on, self.gate = [], fail_on, gate

    def runs_on(self):
        return "fake"

    def encode(self, images):
        if self.gate is not None:
            self.gate.wait()
        self.batches.append(images[:, 0, 0, 0].tolist())
        if self.fail_on is not None and self.fail_on in images[:, 0, 0, 0]:
            raise RuntimeError("out of memory")
        return np.repeat(images[:, :1, 0, 0].astype(np.uint16), 4, axis=1)

    def encode_start(self, images):
        raise AssertionError("a synchronous model is never started ahead")


def pending(unit: str, values: list[int]) -> Pending:
    frames = [Frame(np.full((4, 4, 3), v, np.uint8), f"{unit}/{v}") for v in values]
    sentence = Sentence("s", "single", "image", frames, [f"{unit}-{values[0]}"], unit)
    return Pending(sentence, {f"{unit}-{values[0]}": f"{unit}/{values[0]}"})


def collect(encoder: Encoder, pendings: list[Pending]) -> list:
    results, lock, done = [], threading.Lock(), threading.Semaphore(0)

    def record(t):
        with lock:
            results.append(t)
        done.release()

    for p in pendings:
        encoder.put(p, record)
    for _ in pendings:
        done.acquire()
    return results


def test_batches_take_whole_sentences_across_units():
    model = FakeModel()
    encoder = Encoder([model], batch_size=4)
    results = collect(encoder, [pending("a", [1, 2]), pending("b", [3, 4]), pending("c", [5, 6, 7])])
    encoder.close()
    assert model.batches == [[1, 2, 3, 4], [5, 6, 7]]  # units a and b share a batch: no unit boundary
    assert {t.unit: t.row.tokens.reshape(-1, 4)[:, 0].tolist() for t in results} == {
        "a": [1, 2],
        "b": [3, 4],
        "c": [5, 6, 7],
    }


def test_a_failing_batch_is_retried_sentence_by_sentence():
    model = FakeModel(fail_on=3)
    encoder = Encoder([model], batch_size=8)
    results = {t.unit: t for t in collect(encoder, [pending("a", [1]), pending("b", [3]), pending("c", [5])])}
    encoder.close()
    assert results["a"].row is not None and results["c"].row is not None and results["b"].row is None
    assert results["b"].events[0].outcome.reason is Reason.TOKENIZE_ERROR
    assert "out of memory" in results["b"].events[0].outcome.detail


def test_the_queue_holds_at_most_max_frames():
    gate = threading.Event()
    model = FakeModel(gate=gate)
    encoder = Encoder([model], batch_size=2, max_frames=4)
    entered = []

    def producer():
        for i in range(10):
            encoder.put(pending(f"u{i}", [i]), lambda t: None)
            entered.append(i)

    thread = threading.Thread(target=producer)
    thread.start()
    time.sleep(0.3)
    assert len(entered) == 6  # 2 taken into the blocked batch + 4 queued; the producer waits
    gate.set()
    thread.join()
    encoder.close()
    assert encoder.stats.peak_frames <= 4 + 2 and encoder.stats.frames == 10


class CrashingWorker:
    """Stands in for a decoder process: runs calls here, but 'dies' on any task holding a ref keyed 'crash'."""

    def __init__(self, *args, **kwargs):
        self.calls = 0

    def call(self, fn, *args, timeout_s, name=""):
        self.calls += 1
        refs = [r for g in args[1].groups for r in g] if isinstance(args[1], DecodeTask) else [args[2]]
        if any(r.key == "crash" for r in refs):
            raise ItemError(Reason.DECODER_CRASH, f"{name}: decoder process died (killed by SIGSEGV)")
        return fn(*args)

    def close(self):
        pass


def photo_refs(tmp_path, keys):
    data = photos("heldout")[0].read_bytes()
    return [ItemRef("p", k, "000000", {"image": Part(str(tmp_path / f"{k}.png"), data)}) for k in keys]


def decode_with_a_crash(tmp_path, monkeypatch, groups_of):
    """What a one-worker pool of (fake) decoder processes gives for refs a, crash, b laid out by `groups_of`."""
    monkeypatch.setattr(decoding, "IsolatedWorker", CrashingWorker)
    write_corpus(tmp_path / "in", broken=False)
    run = open_run(
        parse_job_text(job_text("c", tmp_path / "out", "standin:1000", [images_source("p", tmp_path / "in")])),
        load("standin:1000"),
    )
    pool = DecodePool(run.context, workers=1, isolated=True)
    results, done = [], threading.Event()
    pool.submit(
        DecodeTask("p", groups_of(photo_refs(tmp_path, ["a", "crash", "b"]))), lambda r: (results.append(r), done.set())
    )
    done.wait(60)
    pool.close()
    return results[0]


def test_a_decoder_crash_costs_only_the_item_that_crashes(tmp_path, monkeypatch):
    decoded = decode_with_a_crash(tmp_path, monkeypatch, lambda refs: tuple((r,) for r in refs))
    assert sorted(p.sentence.item_keys[0] for p in decoded.pendings) == ["a", "b"]
    assert [(e.key, e.outcome.reason) for e in decoded.events] == [("crash", Reason.DECODER_CRASH)]


def test_a_group_whose_decoder_crashes_is_built_without_the_culprit(tmp_path, monkeypatch):
    decoded = decode_with_a_crash(tmp_path, monkeypatch, lambda refs: (tuple(refs),))
    assert sorted(k for p in decoded.pendings for k in p.sentence.item_keys) == ["a", "b"]
    assert [(e.key, e.outcome.reason) for e in decoded.events] == [("crash", Reason.DECODER_CRASH)]


class UnstartableWorker(CrashingWorker):
    def call(self, fn, *args, timeout_s, name=""):
        raise WorkerStartError(Reason.DECODER_CRASH, "decoder process failed to start (exit code 1)")


def test_decoders_that_cannot_start_fail_the_unit_not_its_items(tmp_path, monkeypatch):
    monkeypatch.setattr(decoding, "IsolatedWorker", UnstartableWorker)
    text = plain_job(tmp_path, "nostart")
    run = open_run(parse_job_text(text), load("standin:1000"))
    executor = UnitExecutor(run.context, run.selections, ExecutorSettings(workers=1, pool="processes"))
    with pytest.raises(UnitFailed, match="failed to start.*decode_pool: threads"):
        executor.run([w for w in run.plain_units() if w.source == "photos"])
    executor.close()
    assert list_markers(str(tmp_path / "nostart")) == []  # no ledger blames the items


def plain_job(tmp_path, name: str, rate: float = 1000, **top) -> str:
    write_corpus(tmp_path / "in")
    sources = [
        images_source("photos", tmp_path / "in"),
        images_source(
            "faces", [str(p) for p in photos("all")[:7]], {"name": "category", "label": "folder", "shot_size": 2}
        ),
    ]
    return job_text(name, tmp_path / name, f"standin:{rate:g}", sources, shard_size=3, batch_size=4, **top)


def test_executor_writes_what_the_plain_loop_writes(tmp_path):
    """The loop is the landed main's code path (one unit, one stage after another): same rows, same ledger."""
    for name in ("pipeline", "loop"):
        text = plain_job(tmp_path, name)
        if name == "pipeline":
            run_job(parse_job_text(text), text, [])
        else:
            tokenizer = load("standin:1000")
            LocalExecutor(open_run(parse_job_text(text), tokenizer), tokenizer).execute()
    for read in (read_sentences, read_ledger):
        assert read(str(tmp_path / "pipeline")).equals(read(str(tmp_path / "loop")))
    counts = [(m["source"], m["unit"], m["counts"]) for m in list_markers(str(tmp_path / "pipeline"))]
    assert counts == [(m["source"], m["unit"], m["counts"]) for m in list_markers(str(tmp_path / "loop"))]
    assert {s for s, _, _ in counts} == {"photos", "faces"}


def test_memory_is_bounded_by_the_frames_in_flight_not_the_job(tmp_path):
    write_photos(tmp_path / "many", 60)
    text = job_text(
        "bounded",
        tmp_path / "bounded",
        "standin:400",
        [images_source("photos", tmp_path / "many")],
        shard_size=20,
        batch_size=4,
    )
    run = open_run(parse_job_text(text), load("standin:400"))
    settings = ExecutorSettings(workers=2, pool="threads", units_in_flight=3, items_per_task=2, max_frames=6)
    executor = UnitExecutor(run.context, run.selections, settings)
    units = run.plain_units()
    markers = executor.run(units)
    executor.close()
    assert len(markers) == len(units) == 3 and executor.encoder.stats.frames == 60
    assert executor.encoder.stats.peak_frames <= 6 + 2 * 4  # the queue, plus the batches being encoded


def test_a_unit_that_cannot_commit_fails_by_name_and_the_others_commit(tmp_path, monkeypatch):
    text = plain_job(tmp_path, "faulty")
    run = open_run(parse_job_text(text), load("standin:1000"))
    real = executor_module.finish_unit

    def disk_full(commit, *args, **kwargs):
        if commit.unit == "000001":
            raise OSError(28, "No space left on device")
        return real(commit, *args, **kwargs)

    monkeypatch.setattr(executor_module, "finish_unit", disk_full)
    executor = UnitExecutor(run.context, run.selections, ExecutorSettings(workers=1, pool="threads"))
    units = [w for w in run.plain_units() if w.source == "photos"]
    with pytest.raises(UnitFailed, match="unit photos/000001 was not committed.*No space left"):
        executor.run(units)
    executor.close()
    assert sorted(m["unit"] for m in list_markers(str(tmp_path / "faulty"), "photos")) == ["000000", "000002"]
