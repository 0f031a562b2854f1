"""`datasets.load_dataset` on a job output (its README.md, lvm_data.shards.card) and on a mix (pipelines/mix.py),
offline, from local folders."""

import json

import pytest

from lvm_data.audit import AuditConfig, run_audit
from lvm_data.job.config import parse_job_text
from lvm_data.job.loop import LocalExecutor
from lvm_data.job.runs import finish_run, open_run
from lvm_data.shards.card import CARD
from lvm_data.shards.reader import read_sentences
from lvm_data.testing import images_source, job_text, write_corpus, write_tiny_checkpoint
from lvm_data.tokenizer import load
from tests.train.synth import mix_rows, small_mix


@pytest.fixture
def load_dataset(tmp_path, monkeypatch):
    """`datasets.load_dataset` with no network and a cache of the test's own."""
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)

    def call(path, *args):
        return datasets.load_dataset(str(path), *args, cache_dir=str(tmp_path / "hf" / "datasets"))

    return call


def run_job(tmp_path):
    """A finished job output: the sample photos plus broken files (ledger rows that failed), in three units."""
    tiny = str(write_tiny_checkpoint(tmp_path / "tiny"))
    expected = write_corpus(tmp_path / "in")
    text = job_text(
        "cards", tmp_path / "out", tiny, [images_source("photos", tmp_path / "in")], shard_size=3, batch_size=2
    )
    tokenizer = load(tiny, device="cpu")
    run = open_run(parse_job_text(text), tokenizer)
    LocalExecutor(run, tokenizer).execute()
    return run, finish_run(run, "local loop"), expected


def test_a_job_output_loads_as_its_sentences_and_its_ledger(tmp_path, load_dataset):
    from datasets import List, Value

    run, manifest, expected = run_job(tmp_path)
    out = tmp_path / "out"
    card = (out / CARD).read_bytes()
    assert card.startswith(b"---\nconfigs:\n")
    (out / "sentences" / "source=photos" / ".tmp-0-part-000009.parquet").write_bytes(b"a killed write")
    sentences = load_dataset(out)
    assert list(sentences) == ["train"]
    rows = sentences["train"]
    assert rows.num_rows == manifest["totals"]["sentences"] == sum(v == "ok" for v in expected.values()) > 0
    features = rows.features
    assert features["tokens"] == List(Value("uint16")) and features["n_images"] == Value("int32")
    assert (features["id"], features["source"]) == (Value("string"), Value("string"))
    assert features["frames"] == List({"uri": Value("string"), "frame": Value("int32"), "role": Value("string")})
    written = read_sentences(str(out)).select(["id", "tokens"]).to_pylist()
    assert sorted(zip(rows["id"], rows["tokens"], strict=True)) == sorted((r["id"], r["tokens"]) for r in written)
    ledger = load_dataset(out, "ledger")["train"]
    assert ledger.num_rows == manifest["totals"]["inputs"] == len(expected)
    assert sorted(ledger["reason"]) == sorted(expected.values())
    (out / "sentences" / "source=photos" / ".tmp-0-part-000009.parquet").unlink()

    assert run_audit([str(out)], AuditConfig(deep=True)).ok  # README.md is no violation
    finish_run(run, "local loop")  # a retry or resume finishes again: the same card
    assert (out / CARD).read_bytes() == card


def test_a_mix_loads_as_its_train_and_validation_splits_in_the_mix_order(tmp_path, load_dataset):
    from datasets import List, Value

    mix = small_mix(tmp_path / "inputs")
    manifest = json.loads((mix / "manifest.json").read_text())
    splits = load_dataset(mix)
    assert sorted(splits) == ["train", "validation"]
    for name, split in splits.items():
        assert split.num_rows == sum(s["sentences"] for s in manifest["shards"] if s["split"] == name) > 0
        assert split.features["tokens"] == List(Value("uint16"))
        assert (split.features["n_images"], split.features["copy"]) == (Value("int32"), Value("int32"))
        assert all(split.features[c] == Value("string") for c in ("part", "output", "source", "sentence_id"))
        order = mix_rows(mix, name)
        assert split["sentence_id"] == [sid for _s, _r, sid, _c in order]  # shard by shard, top to bottom
        assert split["tokens"] == [codes.tolist() for _s, _r, _sid, codes in order]
