"""Services the tests start themselves, on free local ports, and stop afterwards."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

GCS_BUCKET = "lvm-test"  # created by the emulator; every test writes under a prefix of its own


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(
    command: list[str], port: int, log: Path, timeout: float = 60, env: dict | None = None
) -> subprocess.Popen:
    """Start `command` and wait until it accepts connections on `port`; its output goes to `log`."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{' '.join(command[:3])} did not start: {log.read_text()}") from None
            time.sleep(0.2)


def stop_service(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def services(tmp_path):
    """`services(command_for_port, name, env) -> port` starts a service on a free port for this test, logging
    to tmp_path/NAME.log; all are stopped when the test ends."""
    started = []

    def start(command_for_port, name: str, env: dict | None = None) -> int:
        port = free_port()
        started.append(start_service(command_for_port(port), port, tmp_path / f"{name}.log", env=env))
        return port

    yield start
    for proc in reversed(started):
        stop_service(proc)


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory):
    """A gcp-storage-emulator (in memory, bucket GCS_BUCKET) for the whole session; yields its URL."""
    exe = shutil.which("gcp-storage-emulator") or str(Path(sys.executable).parent / "gcp-storage-emulator")
    port = free_port()
    proc = start_service(
        [exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "--default-bucket", GCS_BUCKET],
        port,
        tmp_path_factory.mktemp("gcs") / "log.txt",
        30,
    )
    yield f"http://127.0.0.1:{port}"
    stop_service(proc)


@pytest.fixture
def gcs(gcs_emulator, monkeypatch):
    """A gs:// prefix of this test's own, served by the emulator (STORAGE_EMULATOR_HOST is set)."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    return f"gs://{GCS_BUCKET}/t{time.monotonic_ns()}-{os.getpid()}"


@pytest.fixture
def mem():
    """A memory:// folder of this test's own (fsspec's memory store is one per process), removed afterwards."""
    import fsspec

    root = f"memory://test{time.monotonic_ns()}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)
