import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

BUCKET = "train-test"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The 2-core machines are shared: OpenMP threads that spin against other processes make CPU steps
    up to 50x slower at random. One thread keeps the trainer's tests steady."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gcs_emulator(tmp_path_factory):
    """A gcp-storage-emulator on a free local port (in-memory, bucket BUCKET), stopped afterwards."""
    exe = shutil.which("gcp-storage-emulator") or str(Path(sys.executable).parent / "gcp-storage-emulator")
    port = _free_port()
    log = tmp_path_factory.mktemp("emulator") / "log.txt"
    with open(log, "wb") as out:
        proc = subprocess.Popen([exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory",
                                 "--default-bucket", BUCKET], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gcp-storage-emulator did not start: {log.read_text()}") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def gcs(gcs_emulator, monkeypatch):
    """gs://BUCKET/<unique prefix> served by the emulator for this test."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    return f"gs://{BUCKET}/t{time.monotonic_ns()}-{os.getpid()}"
