from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lvm_data import storage
from lvm_data.audit import AuditConfig, AuditPathError, Kind, run_audit, write_report
from lvm_data.audit.violations import ADVICE
from lvm_data.shards import layout
from lvm_data.shards.schema import arrow_schema

from .handmade import EXPECTED, EXPECTED_LEDGER, FINGERPRINT, Corpus, ledger_row, sentence_id, standard, write_json


def kinds(result) -> set[str]:
    return {k.value for k in result.findings.kinds()}


def test_clean_corpus_counts_match_what_was_written(tmp_path):
    standard(str(tmp_path)).write()
    result = run_audit([str(tmp_path)])
    assert result.ok and kinds(result) == set()
    assert {(r.source, r.template, r.task): (r.sentences, r.images, r.tokens) for r in result.groups} == EXPECTED
    assert result.total.tokens == 128 and abs(sum(r.share for r in result.groups) - 1) < 1e-9
    assert {r.source: r.tokens for r in result.sources} == {"laion": 40, "kinetics": 48, "coco": 40}
    sentence_bytes = sum(p.stat().st_size for p in (tmp_path / "sentences").rglob("*.parquet"))
    assert abs(result.total.bytes - sentence_bytes) <= len(result.groups)  # shared out, rounded per row
    ledger = {r.source: (r.inputs, r.ok, r.filtered, r.failed) for r in result.ledger}
    assert ledger == {**EXPECTED_LEDGER, "*": (22, 18, 2, 2)}
    laion = next(r for r in result.ledger if r.source == "laion")
    assert laion.reasons == {"decode_error": 1, "ok": 10, "too_small": 2} and laion.success_rate == 10 / 13
    assert [(t.fingerprint, t.codebook_size, t.tokens_per_image, t.files) for t in result.tokenizers] == [
        (FINGERPRINT, 16, 4, 5)
    ]
    assert result.lengths == {1: 10, 2: 5, 4: 3}
    assert result.io.corpus_bytes == sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert 0 < result.io.bytes_read


def _rewrite(c: Corpus, source: str, unit: str) -> None:
    c.write_unit(c.unit(source, unit))


def plant_unreadable(c):
    c.write()
    (Path(c.root) / layout.sentences_file("laion", "00001")).write_bytes(b"not parquet")


def plant_unreadable_marker(c):
    c.write(manifest=False)
    storage.write_bytes(layout.join(c.root, layout.marker_file("coco", "00000")), b"{not json")


def plant_metadata_missing(c):
    del c.unit("laion", "00001").meta["job_config_hash"]
    c.write()


def plant_extra_column(c):
    u = c.unit("kinetics", "00000")
    u.schema = arrow_schema("sentence").append(pa.field("caption", pa.string()))
    for row in u.sentences:
        row["caption"] = "a cat"
    c.write()


def plant_manifest_invalid(c):
    document = c.write_manifest(c.write(manifest=False))
    del document["runner"]
    write_json(layout.join(c.root, layout.MANIFEST), document)


def plant_wrong_source_row(c):
    c.unit("laion", "00001").sentences[0]["source"] = "coco"
    c.write()


def plant_wrong_unit_metadata(c):
    c.unit("laion", "00001").meta["unit"] = "00009"
    c.write()


def plant_invalid_values(c):
    u = c.unit("laion", "00000")
    u.sentences[0]["id"] = "NOT-AN-ID"
    u.ledger[0]["sentence_ids"] = ["NOT-AN-ID"]
    u.sentences[1].update(n_images=0, tokens=[], frames=[])
    u.ledger.append(ledger_row("laion", "00000", "weird.jpg", "failed", "no_such_reason", []))
    c.write()


def plant_code_out_of_range(c):
    c.unit("kinetics", "00000").sentences[1]["tokens"][5] = 16  # codebook has 16 codes: 0..15
    c.write()


def plant_short_tokens(c):
    c.unit("laion", "00000").sentences[2]["tokens"].pop()
    c.write()


def plant_missing_frame(c):
    c.unit("coco", "00000").sentences[0]["frames"].pop()
    c.write()


def plant_duplicate_id(c):
    first, second = c.unit("laion", "00000"), c.unit("laion", "00001")
    second.sentences[0]["id"] = first.sentences[0]["id"]
    second.ledger[0]["sentence_ids"] = [first.sentences[0]["id"]]
    c.write()


def plant_second_tokenizer(c):
    c.unit("kinetics", "00000").meta["tokenizer_fingerprint"] = "cd" * 32
    c.write()


def plant_marker_counts(c):
    markers = c.write(manifest=False)
    markers[1]["counts"]["inputs"] += 1
    write_json(layout.join(c.root, layout.marker_file("laion", "00001")), markers[1])
    c.write_manifest(markers)


def plant_manifest_totals(c):
    document = c.write_manifest(c.write(manifest=False))
    document["totals"]["tokens"] += 1
    write_json(layout.join(c.root, layout.MANIFEST), document)


def plant_ok_with_failure_reason(c):
    c.unit("laion", "00000").ledger[3]["reason"] = "decode_error"
    c.write()


def plant_duplicate_key(c):
    other = c.unit("laion", "00000").ledger[0]["key"]
    c.unit("laion", "00001").ledger.append(ledger_row("laion", "00001", other, "failed", "read_error", []))
    c.write()


def plant_missing_sentence(c):
    c.unit("kinetics", "00000").ledger[0]["sentence_ids"].append(sentence_id("never", "written"))
    c.write()


def plant_orphan(c):
    del c.unit("coco", "00001").ledger[0]
    c.write()


def plant_deleted_ledger(c):
    c.write()
    storage.delete(layout.join(c.root, layout.ledger_file("coco", "00000")))


def plant_no_manifest(c):
    c.write(manifest=False)


def plant_uncommitted_unit(c):
    markers = c.write(manifest=False)
    c.write_unit(c.add("laion", "00002", 2), marker=False)
    c.write_manifest(markers)


def plant_stray_temp_file(c):
    c.write()
    storage.write_bytes(layout.join(c.root, "sentences/source=laion/.tmp-0f0f-part-00003.parquet"), b"partial")


def plant_manifest_tokenizer(c):
    document = c.write_manifest(c.write(manifest=False))
    document["tokenizer"]["fingerprint"] = "ef" * 32
    write_json(layout.join(c.root, layout.MANIFEST), document)


def plant_marker_not_in_manifest(c):
    markers = c.write(manifest=False)
    c.write_unit(c.add("kinetics", "00001", 1, n_images=4, template="video", task="video"))
    c.write_manifest(markers)


PLANTS = [
    (plant_unreadable, {"unreadable_file", "count_mismatch", "missing_sentence"}),
    (plant_unreadable_marker, {"unreadable_file", "missing_file", "uncommitted_file"}),
    (plant_metadata_missing, {"schema_mismatch"}),
    (plant_extra_column, {"schema_mismatch"}),
    (plant_manifest_invalid, {"schema_mismatch"}),
    (plant_wrong_source_row, {"wrong_partition"}),
    (plant_wrong_unit_metadata, {"wrong_partition"}),
    (plant_invalid_values, {"invalid_value"}),
    (plant_code_out_of_range, {"code_out_of_range"}),
    (plant_short_tokens, {"length_mismatch"}),
    (plant_missing_frame, {"length_mismatch"}),
    (plant_duplicate_id, {"duplicate_id"}),
    (plant_second_tokenizer, {"tokenizer_mismatch", "manifest_mismatch"}),
    (plant_marker_counts, {"count_mismatch"}),
    (plant_manifest_totals, {"count_mismatch"}),
    (plant_ok_with_failure_reason, {"ledger_status"}),
    (plant_duplicate_key, {"duplicate_key"}),
    (plant_missing_sentence, {"missing_sentence"}),
    (plant_orphan, {"orphan_sentence"}),
    (plant_deleted_ledger, {"missing_file", "orphan_sentence"}),
    (plant_no_manifest, {"missing_file"}),
    (plant_uncommitted_unit, {"uncommitted_file"}),
    (plant_stray_temp_file, {"uncommitted_file"}),
    (plant_manifest_tokenizer, {"manifest_mismatch"}),
    (plant_marker_not_in_manifest, {"manifest_mismatch", "uncommitted_file"}),
]


@pytest.mark.parametrize(("plant", "expected"), PLANTS, ids=[p.__name__[6:] for p, _ in PLANTS])
def test_each_planted_violation_is_caught_and_named(tmp_path, plant, expected):
    c = standard(str(tmp_path))
    plant(c)
    result = run_audit([str(tmp_path)])
    assert kinds(result) == expected
    assert not result.ok


def test_every_violation_kind_has_a_plant_and_advice():
    planted = set().union(*(expected for _, expected in PLANTS))
    assert planted == {k.value for k in Kind}
    assert set(ADVICE) == set(Kind)


def test_findings_name_the_file_and_the_rows(tmp_path):
    c = standard(str(tmp_path))
    plant_duplicate_id(c)
    found = run_audit([str(tmp_path)]).findings.shown[Kind.DUPLICATE_ID]
    duplicated = c.unit("laion", "00000").sentences[0]["id"]
    assert len(found) == 1 and found[0].count == 1 and duplicated in found[0].detail
    assert "part-00000.parquet row" in found[0].detail and "part-00001.parquet row" in found[0].detail


def test_row_level_findings_count_every_row_and_show_a_few(tmp_path):
    c = standard(str(tmp_path))
    u = c.unit("laion", "00000")
    for row in u.sentences:
        row["source"] = "elsewhere"
    c.write()
    result = run_audit([str(tmp_path)], AuditConfig(max_examples=1))
    assert result.findings.totals[Kind.WRONG_PARTITION] == 6
    (shown,) = result.findings.shown[Kind.WRONG_PARTITION]
    assert shown.where.endswith(layout.sentences_file("laion", "00000")) and ": 6 (e.g. " in shown.detail
    assert sum(row["id"] in shown.detail for row in u.sentences) == 3


def test_a_file_with_broken_small_columns_is_not_counted(tmp_path):
    c = standard(str(tmp_path))
    u = c.unit("coco", "00001")
    u.schema = arrow_schema("sentence").set(4, pa.field("n_images", pa.int64()))
    c.write()
    result = run_audit([str(tmp_path)])
    assert kinds(result) == {"schema_mismatch", "missing_sentence"}
    assert ("coco", "pairs", "segmentation") not in {(r.source, r.template, r.task) for r in result.groups}
    (mismatch,) = result.findings.shown[Kind.SCHEMA_MISMATCH]
    assert "column n_images is int64, expected int32" in mismatch.detail


def test_ledger_totals_come_from_the_ledger_not_the_markers(tmp_path):
    c = standard(str(tmp_path))
    plant_marker_counts(c)
    result = run_audit([str(tmp_path)])
    assert next(r for r in result.ledger if r.source == "laion").inputs == 13


def test_many_outputs_are_counted_together_and_checked_across(tmp_path):
    a, b = standard(str(tmp_path / "a")), Corpus(str(tmp_path / "b"))
    a.write()
    copy = b.add("laion", "00000", 1)
    copy.sentences[0]["id"] = a.unit("kinetics", "00000").sentences[0]["id"]
    copy.ledger[0]["sentence_ids"] = [copy.sentences[0]["id"]]
    b.write()
    result = run_audit([str(tmp_path / "a"), str(tmp_path / "b") + "/", str(tmp_path / "a")])
    assert result.paths == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert {r.source: r.sentences for r in result.sources} == {"laion": 11, "kinetics": 3, "coco": 5}
    assert kinds(result) == {"duplicate_id"}


def test_a_path_that_is_not_an_output_is_refused(tmp_path):
    with pytest.raises(AuditPathError, match="does not exist"):
        run_audit([str(tmp_path / "nope")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(AuditPathError, match="manifest.json"):
        run_audit([str(tmp_path / "empty")])


def test_gs_output_through_the_emulator(tmp_path, gcs):
    local = standard(str(tmp_path))
    plant_duplicate_id(local)
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        storage.write_bytes(f"{gcs}/{path.relative_to(tmp_path)}", path.read_bytes())
    remote, here = run_audit([gcs], AuditConfig(deep=True)), run_audit([str(tmp_path)], AuditConfig(deep=True))
    assert [r.to_dict() for r in remote.groups] == [r.to_dict() for r in here.groups]
    assert kinds(remote) == kinds(here) == {"duplicate_id"}
    assert remote.io.corpus_bytes == here.io.corpus_bytes and remote.io.bytes_read == here.io.bytes_read
    assert remote.codebook.histogram == here.codebook.histogram
    write_report(remote, f"{gcs}/report")
    assert storage.exists(f"{gcs}/report/report.html") and storage.exists(f"{gcs}/report/tokens_per_source.png")


ID_KINDS = {"duplicate_id", "duplicate_key", "missing_sentence", "orphan_sentence"}


@pytest.mark.parametrize(("plant", "expected"), PLANTS, ids=[p.__name__[6:] for p, _ in PLANTS])
def test_without_ids_every_other_kind_is_still_caught(tmp_path, plant, expected):
    c = standard(str(tmp_path))
    plant(c)
    result = run_audit([str(tmp_path)], AuditConfig(ids=False))
    assert kinds(result) == expected - ID_KINDS
    assert any("id checks skipped" in note for note in result.notes)


def test_without_ids_less_is_read_and_rows_are_named_by_number(tmp_path):
    c = standard(str(tmp_path))
    c.unit("laion", "00001").sentences[2]["source"] = "coco"
    c.write()
    full, lean = run_audit([str(tmp_path)]), run_audit([str(tmp_path)], AuditConfig(ids=False))
    assert lean.io.bytes_read < full.io.bytes_read
    assert [r.to_dict() for r in lean.groups] == [r.to_dict() for r in full.groups]
    (shown,) = lean.findings.shown[Kind.WRONG_PARTITION]
    assert shown.detail.endswith(": 1 (e.g. row 2)")
    assert run_audit([str(tmp_path)], AuditConfig(ids=False, deep=True)).notes == []


def test_a_unit_whose_items_all_failed_has_an_empty_sentence_file(tmp_path):
    c = standard(str(tmp_path))
    c.add("laion", "00002", 0, failed=("decode_error", "truncated"))
    c.write()
    result = run_audit([str(tmp_path)])
    assert result.ok, result.findings.to_dict()
    laion = next(r for r in result.ledger if r.source == "laion")
    assert (laion.inputs, laion.failed, laion.reasons["truncated"]) == (15, 3, 1)
    assert next(r for r in result.sources if r.source == "laion").sentences == 10


def test_a_ledger_file_with_an_extra_column_is_still_counted(tmp_path):
    c = standard(str(tmp_path))
    c.write()
    ledger = tmp_path / layout.ledger_file("kinetics", "00000")
    table = pq.read_table(ledger)
    pq.write_table(table.append_column("note", pa.array(["x"] * table.num_rows)), ledger)
    result = run_audit([str(tmp_path)])
    assert kinds(result) == {"schema_mismatch", "count_mismatch"}  # the marker's ledger_bytes changed too
    assert next(r for r in result.ledger if r.source == "kinetics").inputs == 4


def test_a_large_output_has_its_ids_checked_in_a_seeded_sample_of_units(tmp_path, monkeypatch):
    """Above ID_SAMPLE_ABOVE the default reads ids of whole units up to ID_SAMPLE_SHARE of the bytes: a
    violation inside the sample is found, the rest is named as unchecked, and `ids="all"` checks everything."""
    from lvm_data.audit import run as audit_run
    from lvm_data.audit.files import list_output

    c = standard(str(tmp_path))
    plant_missing_sentence(c)  # in kinetics/00000
    monkeypatch.setattr(audit_run, "ID_SAMPLE_ABOVE", 0)
    output = list_output(str(tmp_path))
    sample = audit_run.id_sample(output, "sample")
    assert sample == audit_run.id_sample(output, "sample") and 1 <= len(sample) < 5  # seeded: the same each time
    chosen = sum(f[u].size for u in sample for f in (output.sentences, output.ledger) if u in f)
    assert len(sample) == 1 or chosen <= audit_run.ID_SAMPLE_SHARE * output.total_bytes
    monkeypatch.setattr(
        audit_run,
        "id_sample",
        lambda out, mode: {("kinetics", "00000")} if mode == "sample" else None if mode == "all" else set(),
    )
    sampled, full = run_audit([str(tmp_path)]), run_audit([str(tmp_path)], AuditConfig(ids="all"))
    assert "missing_sentence" in kinds(sampled) and kinds(sampled) == kinds(full)
    assert any("checked in 1 of 5 units" in note for note in sampled.notes)
    assert sampled.io.bytes_read < full.io.bytes_read
