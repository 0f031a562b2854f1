import numpy as np
import pyarrow.parquet as pq
import pytest

from lvm_data.audit import AuditConfig, run_audit
from lvm_data.audit.files import AuditPathError, list_output, open_counting, parquet, read_guarded
from lvm_data.shards import layout

from .handmade import Corpus, standard


def test_listing_sorts_files_into_the_layout(tmp_path):
    standard(str(tmp_path)).write()
    (tmp_path / "job.yaml").write_text("name: t\n")
    out = list_output(str(tmp_path) + "/")
    assert out.root == str(tmp_path)
    assert (
        sorted(out.sentences)
        == sorted(out.ledger)
        == sorted(out.markers)
        == [("coco", "00000"), ("coco", "00001"), ("kinetics", "00000"), ("laion", "00000"), ("laion", "00001")]
    )
    entry = out.sentences[("coco", "00001")]
    assert entry.rel == layout.sentences_file("coco", "00001") and entry.uri == str(tmp_path / entry.rel)
    assert entry.size == (tmp_path / entry.rel).stat().st_size
    assert out.manifest.rel == "manifest.json" and [e.rel for e in out.other] == ["job.yaml"]
    assert out.total_bytes == sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())


def test_a_file_is_not_an_output(tmp_path):
    (tmp_path / "x.parquet").write_bytes(b"x")
    with pytest.raises(AuditPathError, match="is a file"):
        list_output(str(tmp_path / "x.parquet"))


def test_counting_file_counts_what_parquet_reads(tmp_path):
    standard(str(tmp_path)).write()
    path = str(tmp_path / layout.sentences_file("laion", "00000"))
    with open_counting(path) as f:
        pf = parquet(f)
        footer = f.bytes_read
        pf.read_row_group(0, columns=["n_images"])
        assert 0 < footer <= (tmp_path / layout.sentences_file("laion", "00000")).stat().st_size < f.bytes_read
    table, read, error = read_guarded(path, lambda f: parquet(f).read())
    assert error == "" and table.num_rows == 6 and read > 0
    nothing, read, error = read_guarded(str(tmp_path / "manifest.json"), lambda f: parquet(f).read())
    assert nothing is None and "Parquet" in error and read > 0


def test_the_audit_reads_a_small_fraction_and_deep_reads_everything(tmp_path):
    """Files large enough that footers are a small part: 16-image sentences of 256 tokens per image."""
    c = Corpus(str(tmp_path), tpi=256, codebook=8192)
    for unit in ("00000", "00001"):
        c.add("kinetics", unit, 60, n_images=16, template="video", task="video")
    c.rng = np.random.default_rng(3)
    c.write()
    tokens = sum(
        pq.ParquetFile(p).metadata.row_group(0).column(5).total_compressed_size
        for p in (tmp_path / "sentences").rglob("*.parquet")
    )
    cheap = run_audit([str(tmp_path)])
    assert cheap.ok and cheap.total.tokens == 2 * 60 * 16 * 256
    assert cheap.io.bytes_read < 0.06 * cheap.io.corpus_bytes and tokens > 0.8 * cheap.io.corpus_bytes
    deep = run_audit([str(tmp_path)], AuditConfig(deep=True))
    assert deep.io.bytes_read > tokens
