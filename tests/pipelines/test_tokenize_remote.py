"""The main job against services: gs:// input and output on a local GCS emulator, memory:// (fsspec, in
process) input and output, and Beam's PortableRunner against the local job service (started here, on free ports)."""

import sys
import time

import fsspec
import pytest
from resumes import assert_resumed_like_clean, kill_after_first_commit, slow_job

from lvm_data import storage
from lvm_data.job.config import parse_job_text
from lvm_data.media.samples import photos
from lvm_data.shards.reader import list_markers, read_ledger, read_sentences
from lvm_data.testing import images_source, job_text, write_tiny_checkpoint
from pipelines.tokenize import run_job


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("tiny")))


def test_gs_input_and_output_on_an_emulator(tiny, gcs):
    for path in photos("heldout"):
        storage.write_bytes(f"{gcs}/in/{path.name}", path.read_bytes())
    storage.write_bytes(f"{gcs}/in/zero.png", b"")
    text = job_text("g", f"{gcs}/out", tiny, [images_source("photos", f"{gcs}/in")], shard_size=2)
    manifest = run_job(parse_job_text(text), text, [])
    assert (manifest["totals"]["ok"], manifest["totals"]["failed"]) == (3, 1)
    assert read_ledger(f"{gcs}/out")["key"].to_pylist()[-1] == "zero.png"  # keyed relative to the folder
    assert read_ledger(f"{gcs}/out")["uri"].to_pylist()[-1] == f"{gcs}/in/zero.png"
    assert read_sentences(f"{gcs}/out").num_rows == 3 and len(list_markers(f"{gcs}/out")) == 2
    assert storage.exists(f"{gcs}/out/job.yaml") and storage.exists(f"{gcs}/out/manifest.json")
    assert not [u for u in storage.list_files(f"{gcs}/out") if "/.tmp-" in u]


def test_memory_input_by_brace_alternatives_and_memory_output(tiny):
    root = f"memory://tokenize{time.monotonic_ns()}"
    try:
        for path in photos("heldout"):
            storage.write_bytes(f"{root}/in/{path.name}", path.read_bytes())
        storage.write_bytes(f"{root}/in/zero.png", b"")
        names = ",".join(sorted(p.name for p in photos("heldout")))
        source = images_source("photos", [f"{root}/in/{{{names}}}", f"{root}/in/zero.png"])
        text = job_text("m", f"{root}/out", tiny, [source], shard_size=2)
        manifest = run_job(parse_job_text(text), text, [])
        assert (manifest["totals"]["ok"], manifest["totals"]["failed"]) == (3, 1)
        assert read_ledger(f"{root}/out")["key"].to_pylist()[-1] == "zero.png"  # a named file: its name
        assert read_ledger(f"{root}/out")["uri"].to_pylist()[-1] == f"{root}/in/zero.png"
        assert read_sentences(f"{root}/out").num_rows == 3 and len(list_markers(f"{root}/out")) == 2
        assert not [u for u in storage.list_files(f"{root}/out") if "/.tmp-" in u]
    finally:
        fsspec.filesystem("memory").rm(root, recursive=True)


def test_portable_runner_on_the_local_job_service_gives_the_embedded_rows(tmp_path, tiny, services):
    files = [str(p) for p in photos("heldout")]
    port = services(
        lambda port: [
            sys.executable,
            "-m",
            "apache_beam.runners.portability.local_job_service_main",
            "--port",
            str(port),
        ],
        "jobservice",
    )
    portable = job_text("p", tmp_path / "portable", tiny, [images_source("photos", files)], shard_size=2)
    manifest = run_job(
        parse_job_text(portable),
        portable,
        ["--runner=PortableRunner", f"--job_endpoint=localhost:{port}", "--environment_type=LOOPBACK"],
    )
    embedded = job_text("p", tmp_path / "embedded", tiny, [images_source("photos", files)], shard_size=2)
    run_job(parse_job_text(embedded), embedded, [])
    assert manifest["runner"] == "PortableRunner"
    columns = ["id", "tokens", "frames"]
    assert read_sentences(str(tmp_path / "portable"), columns=columns).equals(
        read_sentences(str(tmp_path / "embedded"), columns=columns)
    )


def test_killed_portable_run_keeps_its_committed_units_and_resumes(tmp_path, services):
    port = services(
        lambda port: [
            sys.executable,
            "-m",
            "apache_beam.runners.portability.local_job_service_main",
            "--port",
            str(port),
        ],
        "jobservice",
    )
    portable = ["--runner=PortableRunner", f"--job_endpoint=localhost:{port}", "--environment_type=LOOPBACK"]
    files = [str(p) for p in photos("all")[:10]]
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    clean_text = slow_job("k", clean, files, rate=1000)
    run_job(parse_job_text(clean_text), clean_text, [])  # the embedded runner: the same rows on every runner
    text = slow_job("k", killed, files)
    (tmp_path / "job.yaml").write_text(text)
    committed = kill_after_first_commit(
        [sys.executable, "-m", "lvm_data.cli", "run", str(tmp_path / "job.yaml"), *portable], killed
    )
    assert 1 <= committed < 5, "the kill must land after the first and before the last unit"
    before = {m["unit"]: m["committed"] for m in list_markers(str(killed))}
    time.sleep(1.1)  # marker timestamps have one-second resolution: a redone unit would show a later one
    manifest = run_job(parse_job_text(text), text, portable)
    assert manifest["runner"] == "PortableRunner"
    assert_resumed_like_clean(killed, clean, before)
