"""Storage faults end `lvm-data run` with one line (output, errno, what to do) and exit status 2; nothing partial
is visible and a rerun gives what a clean run gives (issue 15). Faults are injected by patching the writers, as
the tests may run as root, for whom a read-only folder is writable."""

import errno
import json
import logging
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from lvm_data import storage
from lvm_data.cli import main
from lvm_data.cli.jobs import QuietFaults
from lvm_data.media.samples import photos
from lvm_data.shards import writer
from lvm_data.testing import images_source, job_text, write_corpus, write_tiny_checkpoint


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A job of 4 one-item units and its clean output, for comparison."""
    root = tmp_path_factory.mktemp("faults")
    tiny = write_tiny_checkpoint(root / "tiny")
    write_corpus(root / "in", photos("heldout"), broken=False)
    job = root / "job.yaml"
    job.write_text(job_text("faults", root / "out", tiny, [images_source("photos", root / "in")], shard_size=1))
    clean = root / "clean"
    result = CliRunner().invoke(main, ["run", str(job), "--no-progress", "--output", str(clean)])
    assert result.exit_code == 0, result.output
    return job, clean


def rows(out: Path) -> tuple[list, list]:
    """Every sentence (id, tokens) and ledger row (key, status, reason) in OUT, sorted."""
    sentences = sorted(
        (r["id"], tuple(r["tokens"]))
        for f in (out / "sentences").rglob("*.parquet")
        for r in pq.read_table(f, columns=["id", "tokens"]).to_pylist()
    )
    ledger = sorted(
        (r["key"], r["status"], r["reason"])
        for f in (out / "ledger").rglob("*.parquet")
        for r in pq.read_table(f, columns=["key", "status", "reason"]).to_pylist()
    )
    return sentences, ledger


def visible_partial(out: Path) -> list[str]:
    """Files a reader would see that no committed unit accounts for (.tmp- names are invisible by design)."""
    markers = [json.loads(m.read_text()) for m in (out / "units").rglob("*.json")] if (out / "units").exists() else []
    named = {m[k] for m in markers for k in ("sentences_file", "ledger_file")}
    files = [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")]
    return [f for f in files if f.startswith(("sentences/", "ledger/", "progress/")) and f not in named]


def failing_after(n: int, error: OSError, original, only=lambda uri: True):
    calls = {"n": 0}

    def fake(uri, *args, **kwargs):
        if only(uri):
            calls["n"] += 1
            if calls["n"] > n:
                raise error
        return original(uri, *args, **kwargs)

    return fake


ENOSPC = OSError(errno.ENOSPC, "No space left on device")
EACCES = PermissionError(errno.EACCES, "Permission denied")
UNAVAILABLE = OSError("google::cloud::Status(UNAVAILABLE: Retry policy exhausted in PutObject: connection reset)")

FAULTS = {  # name -> (patched attribute, error, calls that succeed first, which calls count)
    "disk full on a sentence file": (writer, "write_parquet_atomic", ENOSPC, 2, lambda u: "/sentences/" in u),
    "disk full on a ledger file": (writer, "write_parquet_atomic", ENOSPC, 1, lambda u: "/ledger/" in u),
    "permission denied on a marker": (storage, "write_bytes", EACCES, 2, lambda u: "/units/" in u),
    "object store failing on a file": (writer, "write_parquet_atomic", UNAVAILABLE, 3, lambda u: True),
    "disk full on the manifest": (storage, "write_bytes", ENOSPC, 0, lambda u: u.endswith("manifest.json")),
    "permission denied on job.yaml": (storage, "write_bytes", EACCES, 0, lambda u: u.endswith("job.yaml")),
}
SAYS = {
    ENOSPC: ("[Errno 28] No space left on device (ENOSPC)", "free space on the disk that holds"),
    EACCES: ("[Errno 13] Permission denied (EACCES)", "writable for this user"),
    UNAVAILABLE: ("OSError: google::cloud::Status(UNAVAILABLE", "kept failing (after its own retries)"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_storage_fault_is_one_line_and_a_rerun_completes(fault, setup, tmp_path, monkeypatch):
    job, clean = setup
    module, name, error, n, only = FAULTS[fault]
    out = tmp_path / "out"
    monkeypatch.setattr(module, name, failing_after(n, error, getattr(module, name), only))
    result = CliRunner().invoke(main, ["run", str(job), "--no-progress", "--output", str(out)])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    said, advice = SAYS[error]
    assert line.startswith(f"error: writing the job output {out} failed: {said}"), line
    assert advice in line and "run the same command again" in line
    assert visible_partial(out) == []
    monkeypatch.undo()
    result = CliRunner().invoke(main, ["run", str(job), "--no-progress", "--output", str(out)])
    assert result.exit_code == 0, result.output
    sentences, ledger = rows(out)
    assert (sentences, ledger) == rows(clean) and visible_partial(out) == []  # nothing lost
    assert len({i for i, _ in sentences}) == len(sentences) and len({k for k, *_ in ledger}) == len(ledger)
    assert json.loads((out / "manifest.json").read_text())["totals"]["inputs"] == len(ledger)


def test_a_fault_in_a_worker_process_ends_with_the_line(setup, tmp_path):
    """Worker processes send the fault back as traceback text, read like the exception. Beam's SDK worker prints
    its traceback to the stderr it inherits before it reports the failure (sdk_worker._execute); the driver's
    logging of it is held back, and the run ends with the one line."""
    job, clean = setup
    out = tmp_path / "out"
    out.mkdir()
    (out / "ledger").write_text("a file where the ledger folder goes")
    command = [
        sys.executable,
        "-m",
        "lvm_data.cli",
        "run",
        str(job),
        "--no-progress",
        "--output",
        str(out),
        "--direct_running_mode",
        "multi_processing",
        "--direct_num_workers",
        "2",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "ERROR:apache_beam" not in done.stderr
    assert line.startswith(f"error: writing the job output {out} failed: [Errno 20] "), line
    assert "(ENOTDIR)" in line and "a file stands where" in line
    assert visible_partial(out) == [] and done.stdout == ""
    (out / "ledger").unlink()
    result = CliRunner().invoke(main, ["run", str(job), "--no-progress", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert rows(out) == rows(clean)


def test_a_bug_keeps_its_traceback(setup, tmp_path, monkeypatch):
    job, _ = setup

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(writer, "write_parquet_atomic", broken)
    result = CliRunner().invoke(main, ["run", str(job), "--no-progress", "--output", str(tmp_path / "out")])
    assert result.exit_code == 1 and "a bug" in str(result.exception)


def test_beam_log_records_of_a_fault_are_held_back():
    log = logging.getLogger("apache_beam.runners.common")
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    keep = Keep()
    log.addHandler(keep)
    try:
        with QuietFaults():
            log.error("unit a/0 was not committed: OSError: [Errno 28] No space left on device")
            log.error("unit a/0 was not committed: KeyError: 'x'")
        log.error("after: OSError: [Errno 28] No space left on device")
    finally:
        log.removeHandler(keep)
    assert records == [
        "unit a/0 was not committed: KeyError: 'x'",
        "after: OSError: [Errno 28] No space left on device",
    ]
