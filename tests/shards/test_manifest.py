import pytest

from lvm_data.shards.manifest import ManifestError, build_manifest, format_totals, read_manifest, write_manifest


def marker(source, unit, ok, failed, reasons):
    return {
        "source": source,
        "unit": unit,
        "items_digest": "d",
        "sentences_file": f"sentences/{unit}",
        "ledger_file": f"ledger/{unit}",
        "committed": "2026-01-01T00:00:00+00:00",
        "sentences_bytes": 100,
        "counts": {
            "inputs": ok + failed,
            "ok": ok,
            "filtered": 0,
            "failed": failed,
            "reasons": reasons,
            "sentences": ok,
            "images": ok,
            "tokens": ok * 4,
        },
    }


def manifest(markers):
    return build_manifest(
        job={"name": "j", "config_hash": "h", "config": {}},
        tokenizer={
            "uri": "t",
            "format": "open-muse",
            "fingerprint": "f",
            "codebook_size": 8,
            "tokens_per_image": 4,
            "image_size": 32,
        },
        runner="FnApiRunner",
        started="s",
        finished="f",
        markers=markers,
        sources=["a", "b"],
    )


def test_totals_per_source_and_overall(tmp_path):
    markers = [
        marker("a", "1", 2, 1, {"ok": 2, "not_media": 1}),
        marker("a", "2", 1, 0, {"ok": 1}),
        marker("b", "1", 0, 2, {"truncated": 2}),
    ]
    doc = manifest(markers)
    assert doc["totals"]["inputs"] == 6 and doc["totals"]["reasons"] == {"not_media": 1, "ok": 3, "truncated": 2}
    assert doc["sources"]["a"]["units"] == 2 and doc["sources"]["a"]["sentences_bytes"] == 200
    assert doc["sources"]["b"]["failed"] == 2
    write_manifest(str(tmp_path), doc)
    assert read_manifest(str(tmp_path)) == doc
    text = format_totals(doc)
    assert "not_media=1" in text and "truncated=2" in text


def test_curation_removals_are_summed_where_units_have_them(tmp_path):
    filtered = marker("a", "1", 1, 0, {"ok": 1})
    filtered["counts"]["curation"] = {"removed": {"static_clip": 3, "too_small": 1}}
    also = marker("a", "2", 1, 0, {"ok": 1})
    also["counts"]["curation"] = {"removed": {"static_clip": 1}}
    doc = manifest([filtered, also, marker("b", "1", 1, 0, {"ok": 1})])
    assert doc["sources"]["a"]["curation"] == {"removed": {"static_clip": 4, "too_small": 1}}
    assert "curation" not in doc["sources"]["b"] and doc["totals"]["curation"]["removed"]["static_clip"] == 4
    write_manifest(str(tmp_path), doc)  # valid against the schemas
    assert "curation removed (items, clips or sentences): static_clip=4, too_small=1" in format_totals(doc)


def test_source_without_units_still_has_a_row():
    assert manifest([])["sources"]["b"] == {
        "inputs": 0,
        "ok": 0,
        "filtered": 0,
        "failed": 0,
        "reasons": {},
        "sentences": 0,
        "images": 0,
        "tokens": 0,
        "units": 0,
        "sentences_bytes": 0,
    }


def test_invalid_manifest_is_refused(tmp_path):
    doc = manifest([])
    del doc["runner"]
    with pytest.raises(ManifestError, match="'runner' is a required property"):
        write_manifest(str(tmp_path), doc)
    assert read_manifest(str(tmp_path)) is None
