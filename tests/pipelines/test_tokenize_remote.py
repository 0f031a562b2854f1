"""The main job against services: gs:// input and output on a local GCS emulator, and Beam's
PortableRunner against the local job service (both started here, on free ports)."""

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lvm_data import storage
from lvm_data.config import parse_job_text
from lvm_data.media.samples import photos
from lvm_data.shards.reader import list_markers, read_ledger, read_sentences
from lvm_data.testing import images_source, job_text, write_tiny_checkpoint
from pipelines.tokenize import run_job


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], port: int, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{command[0]} did not start: {log.read_text()}") from None
            time.sleep(0.2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("tiny")))


def test_gs_input_and_output_on_an_emulator(tmp_path, tiny, monkeypatch):
    exe = shutil.which("gcp-storage-emulator") or str(Path(sys.executable).parent / "gcp-storage-emulator")
    port = free_port()
    proc = start([exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "--default-bucket", "bk"],
                 port, tmp_path / "emulator.log")
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        for path in photos("heldout"):
            storage.write_bytes(f"gs://bk/in/{path.name}", path.read_bytes())
        storage.write_bytes("gs://bk/in/zero.png", b"")
        text = job_text("g", "gs://bk/out", tiny, [images_source("photos", "gs://bk/in")], shard_size=2)
        manifest = run_job(parse_job_text(text), text, [])
        assert (manifest["totals"]["ok"], manifest["totals"]["failed"]) == (3, 1)
        assert read_ledger("gs://bk/out")["key"].to_pylist()[-1] == "gs://bk/in/zero.png"
        assert read_sentences("gs://bk/out").num_rows == 3 and len(list_markers("gs://bk/out")) == 2
        assert storage.exists("gs://bk/out/job.yaml") and storage.exists("gs://bk/out/manifest.json")
        assert not [u for u in storage.list_files("gs://bk/out") if "/.tmp-" in u]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_portable_runner_on_the_local_job_service_gives_the_embedded_rows(tmp_path, tiny):
    files = [str(p) for p in photos("heldout")]
    port = free_port()
    proc = start([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main", "--port",
                  str(port)], port, tmp_path / "jobservice.log")
    try:
        portable = job_text("p", tmp_path / "portable", tiny, [images_source("photos", files)], shard_size=2)
        manifest = run_job(parse_job_text(portable), portable, ["--runner=PortableRunner",
                                                                f"--job_endpoint=localhost:{port}",
                                                                "--environment_type=LOOPBACK"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    embedded = job_text("p", tmp_path / "embedded", tiny, [images_source("photos", files)], shard_size=2)
    run_job(parse_job_text(embedded), embedded, [])
    assert manifest["runner"] == "PortableRunner"
    columns = ["id", "tokens", "frames"]
    assert read_sentences(str(tmp_path / "portable"), columns=columns).equals(
        read_sentences(str(tmp_path / "embedded"), columns=columns))
