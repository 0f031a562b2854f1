"""benchmarks/fuzz.py: every target holds its contract on a handful of examples, and a finding is shrunk and saved.

The real run (`python benchmarks/fuzz.py`) is a command that prints its figures; here it runs a few examples per
target, and its bookkeeping runs against a fake worker whose check breaks on purpose.
"""

import importlib
import pickle
import sys
from pathlib import Path

import pytest

from lvm_data.outcomes import ItemError, Reason

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def fuzz():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))  # the worker process imports fuzz_targets by name, from sys.path
        yield importlib.import_module("fuzz")


def findings(reports) -> dict:
    return {(r.target, s): f.detail[-2000:] for r in reports for s, f in r.findings.items()}


@pytest.mark.timeout(120)
def test_each_target_holds_its_contract_on_a_few_examples(fuzz, tmp_path):
    reports = fuzz.run_fuzz(["image", "tar", "job"], fuzz.Budget(examples=20, seconds=60, log=str(tmp_path / "log")))
    reports += fuzz.run_fuzz(["video"], fuzz.Budget(examples=10, seconds=40, log=str(tmp_path / "log")))
    assert findings(reports) == {}
    assert [(r.target, r.examples) for r in reports] == [("image", 20), ("tar", 20), ("job", 20), ("video", 10)]
    assert all(sum(r.outcomes.values()) == r.examples for r in reports)


class FakeWorker:
    """A job check whose job files hang (the generated ones start with 'name:') and whose other text with a digit
    is a bug."""

    def call(self, fn, target, payload, limits, timeout_s, name):
        if payload.startswith("name:"):
            raise ItemError(Reason.TIMEOUT, "did not finish")
        if any(c in "0123456789" for c in payload):
            return fuzz_verdict()("exception", "exception", "IndexError at config.py:1", "Traceback ...")
        return fuzz_verdict()("ok")


def fuzz_verdict():
    return sys.modules["fuzz_targets"].Verdict


def test_a_finding_is_shrunk_saved_and_replayable(fuzz, tmp_path):
    fuzzer = fuzz.Fuzzer("job", FakeWorker(), fuzz.Budget(examples=200, seconds=30, shrink_seconds=10))
    report = fuzzer.run()
    assert set(report.findings) == {"IndexError at config.py:1", "hang of the job check"}
    bug = report.findings["IndexError at config.py:1"]
    assert bug.kind == "exception" and bug.payload == "0"  # shrunk to the smallest text with a digit
    assert report.findings["hang of the job check"].kind == "hang" and report.shrink_calls > 0
    fuzz.save(report, tmp_path)
    saved = sorted(p.name for p in (tmp_path / "job").iterdir())
    assert saved == [
        "00-IndexError-at-config-py-1.pkl",
        "00-IndexError-at-config-py-1.txt",
        "00-IndexError-at-config-py-1.yaml",
        "01-hang-of-the-job-check.pkl",
        "01-hang-of-the-job-check.txt",
        "01-hang-of-the-job-check.yaml",
    ]
    assert pickle.loads((tmp_path / "job" / "00-IndexError-at-config-py-1.pkl").read_bytes())["payload"] == bug.payload
    assert fuzz.replay(tmp_path / "job" / "00-IndexError-at-config-py-1.pkl") == 0  # the real parser refuses it


class CrashingWorker:
    """A worker that an input with a digit kills; `broken`: one that cannot run anything (lvm_data does not import)."""

    def __init__(self, broken: bool = False):
        self.broken = broken

    def call(self, fn, *args, timeout_s, name):
        if self.broken or (args and any(c in "0123456789" for c in args[1])):
            raise ItemError(Reason.DECODER_CRASH, "decoder process died (killed by SIGSEGV)")
        return fuzz_verdict()("ok") if args else "ok"


def test_a_crash_is_a_finding_and_a_worker_that_cannot_start_ends_the_run(fuzz):
    report = fuzz.Fuzzer("job", CrashingWorker(), fuzz.Budget(examples=100, seconds=30, shrink_seconds=5)).run()
    assert [(f.kind, f.signature) for f in report.findings.values()] == [("crash", "crash of the job check")]
    with pytest.raises(RuntimeError, match="the fuzz worker cannot run"):
        fuzz.Fuzzer("job", CrashingWorker(broken=True), fuzz.Budget(examples=5, seconds=10)).run()
