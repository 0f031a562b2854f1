"""What a rerun refuses (issue 15): markers of a source the job file no longer has, and units whose input files
changed since they committed; the audit of such an output reports, never crashes."""

import json
import os
import shutil

import pytest
from click.testing import CliRunner

from lvm_data.audit import run_audit
from lvm_data.cli import main
from lvm_data.media.samples import photos
from lvm_data.testing import images_source, job_text, write_corpus, write_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


def killed_after_one_unit(tmp_path, tiny, name="photos"):
    """A job of two units run to the end, then put back as a kill after its first unit leaves it."""
    write_corpus(tmp_path / "in", photos("heldout"), broken=False)
    job = tmp_path / "job.yaml"
    job.write_text(job_text("j", tmp_path / "out", tiny, [images_source(name, tmp_path / "in")], shard_size=2))
    result = CliRunner().invoke(main, ["run", str(job), "--no-progress"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    (out / "manifest.json").unlink()
    (out / "units" / f"source={name}" / "000001.json").unlink()
    return job, out


def run(job):
    return CliRunner().invoke(main, ["run", str(job), "--no-progress"])


def test_a_renamed_source_is_refused_and_the_audit_reports(tmp_path, tiny):
    job, out = killed_after_one_unit(tmp_path, tiny)
    job.write_text(job.read_text().replace("name: photos", "name: pics"))
    result = run(job)
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {out} holds committed units of source 'photos' (1 unit), which the job "
        "file no longer has (its sources: pics); use a new output folder, or give the "
        "source its old name again in the job file"
    )
    assert not (out / "units" / "source=pics").exists()
    audit = run_audit([str(out)])
    # no manifest yet, and unit 000001's files without their marker (the kill, as staged here)
    assert {k.value for k in audit.findings.kinds()} == {"missing_file", "uncommitted_file"}
    job.write_text(job.read_text().replace("name: pics", "name: photos"))  # the old name again: it resumes
    assert run(job).exit_code == 0


def test_a_file_changed_inside_a_committed_unit_is_refused(tmp_path, tiny):
    job, out = killed_after_one_unit(tmp_path, tiny)
    committed = json.loads((out / "units" / "source=photos" / "000000.json").read_text())
    first = sorted((tmp_path / "in").iterdir())[0]
    assert any(first.name in key for key in _ledger_keys(out, committed))  # the first file is in unit 000000
    saved = tmp_path / "saved"
    shutil.copy2(first, saved)
    shutil.copy(photos("heldout")[-1], first)  # other content under the same name
    result = run(job)
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {out}: unit photos/000000 was committed from different inputs than "
        "this run plans (other files, or a file whose size or modification time changed "
        "since); use a new output folder, or restore the inputs it was written from"
    )
    shutil.copy2(saved, first)  # restored with its time: the rerun resumes
    assert run(job).exit_code == 0
    assert json.loads((out / "manifest.json").read_text())["totals"]["inputs"] == 3


def test_a_touched_file_is_refused_too(tmp_path, tiny):
    job, out = killed_after_one_unit(tmp_path, tiny)
    first = sorted((tmp_path / "in").iterdir())[0]
    st = first.stat()
    os.utime(first, ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))
    assert run(job).exit_code == 2
    os.utime(first, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert run(job).exit_code == 0


def _ledger_keys(out, marker) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_table(out / marker["ledger_file"], columns=["key"]).column("key").to_pylist()
