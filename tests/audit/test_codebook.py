import math

import numpy as np
import pyarrow as pa

from lvm_data.audit import AuditConfig, Kind, run_audit
from lvm_data.audit.codebook import CodeTally, duplicate_rows, entropy_bits, row_tokens, summarize

from .handmade import Corpus, standard


def test_row_tokens_lengths_ranges_histogram_and_digests():
    tokens = pa.array([[1, 2, 3], [], [9, 1], [1, 2, 3]], pa.list_(pa.uint16()))[1:]  # sliced: offsets start at 3
    rows = row_tokens(tokens, codebook_size=8)
    assert rows.lengths.tolist() == [0, 2, 3]
    assert rows.out_of_range.tolist() == [False, True, False]
    assert rows.histogram[[1, 2, 3, 9]].tolist() == [2, 1, 1, 1] and rows.histogram.sum() == 5
    assert rows.digests.shape == (3, 2) and not (rows.digests[0] == rows.digests[2]).all()
    again = row_tokens(pa.array([[1, 2, 3]], pa.list_(pa.uint16())), 8)
    assert (again.digests[0] == rows.digests[2]).all()


def test_entropy_dead_codes_and_top_share():
    assert entropy_bits(np.array([5, 5, 5, 5])) == 2.0 and entropy_bits(np.array([7, 0, 0])) == 0.0
    histogram = np.zeros(1 << 16, np.int64)
    histogram[[0, 1, 2, 3]] = [10, 10, 10, 70]
    histogram[300] = 4  # out of range for a 200-code book
    tally = CodeTally({"a": histogram}, [])
    stats = summarize(tally, codebook_size=200)
    assert stats.used == 4 and len(stats.dead_codes) == 196 and stats.dead_codes[:2] == [4, 5]
    assert stats.out_of_range_tokens == 4 and stats.tokens == 104
    assert math.isclose(stats.top1pct_share, 0.8)  # the 2 most used codes of 200
    assert math.isclose(stats.entropy_bits, -(3 * 0.1 * math.log2(0.1) + 0.7 * math.log2(0.7)))


def test_duplicate_rows_groups_identical_digests():
    digests = np.array([[1, 2], [3, 4], [1, 2], [5, 6], [1, 2], [3, 4]], np.uint64)
    assert sorted(g.tolist() for g in duplicate_rows(digests)) == [[0, 2, 4], [1, 5]]
    assert duplicate_rows(np.zeros((0, 2), np.uint64)) == []


def test_deep_audit_counts_codes_and_names_duplicate_sentences(tmp_path):
    c = Corpus(str(tmp_path), codebook=64)
    a = c.add("laion", "00000", 5)
    b = c.add("kinetics", "00000", 2, n_images=2, template="video", task="video")
    for row in a.sentences:
        row["tokens"] = [7, 7, 9, 9]
    b.sentences[1]["tokens"] = list(range(8))
    c.write()
    result = run_audit([str(tmp_path)], AuditConfig(deep=True))
    stats = result.codebook
    assert result.ok and stats.codebook_size == 64 and stats.tokens == 5 * 4 + 2 * 8
    used = {7, 9} | set(range(8)) | set(b.sentences[0]["tokens"])
    assert stats.used == len(used) and len(stats.dead_codes) == 64 - len(used)
    assert stats.histogram[7] == 10 + 1 + b.sentences[0]["tokens"].count(7)
    assert stats.duplicate_sentences == 4
    assert sorted(stats.duplicate_examples[0]) == sorted(r["id"] for r in a.sentences)
    assert stats.per_source["laion"] == {"codebook_size": 64, "tokens": 20, "used": 2, "entropy_bits": 1.0}


def test_each_source_is_measured_in_its_own_codebook(tmp_path):
    big, small = Corpus(str(tmp_path / "big"), codebook=64, fingerprint="cd" * 32), Corpus(str(tmp_path / "small"))
    for row in big.add("coco", "00000", 2).sentences:
        row["tokens"] = [40, 41, 42, 43]
    big.write()
    small.add("laion", "00000", 3)
    small.write()
    result = run_audit([str(tmp_path / "big"), str(tmp_path / "small")], AuditConfig(deep=True))
    assert {k.value for k in result.findings.kinds()} == {"tokenizer_mismatch"}
    assert result.codebook.codebook_size == 16  # the tokenizer of most sentences
    assert result.codebook.out_of_range_tokens == 8  # coco's codes, seen through a 16-code book
    coco = result.codebook.per_source["coco"]
    assert (coco["codebook_size"], coco["tokens"], coco["used"], coco["entropy_bits"]) == (64, 8, 4, 2.0)
    assert result.codebook.per_source["laion"]["codebook_size"] == 16


def test_without_token_statistics_codes_are_checked_only_when_deep(tmp_path):
    c = standard(str(tmp_path))
    u = c.unit("kinetics", "00000")
    u.statistics = False  # as the pipeline's writer does: statistics on id and n_images only
    u.sentences[2]["tokens"][0] = 40
    c.write()
    cheap = run_audit([str(tmp_path)])
    assert cheap.ok and any("not range-checked" in note for note in cheap.notes)
    deep = run_audit([str(tmp_path)], AuditConfig(deep=True))
    (found,) = deep.findings.shown[Kind.CODE_OUT_OF_RANGE]
    assert u.sentences[2]["id"] in found.detail and found.count == 1
    assert deep.codebook.out_of_range_tokens == 1


def test_deep_names_the_sentences_with_wrong_lengths(tmp_path):
    c = standard(str(tmp_path))
    rows = c.unit("laion", "00001").sentences
    rows[0]["tokens"].append(1)
    rows[3]["tokens"] = rows[3]["tokens"][:2]
    c.write()
    cheap = run_audit([str(tmp_path)]).findings.shown[Kind.LENGTH_MISMATCH]
    assert len(cheap) == 1 and "row group 0" in cheap[0].detail  # 17 entries - 2 + 1: counted, not named
    (deep,) = run_audit([str(tmp_path)], AuditConfig(deep=True)).findings.shown[Kind.LENGTH_MISMATCH]
    assert deep.count == 2 and rows[0]["id"] in deep.detail and rows[3]["id"] in deep.detail
