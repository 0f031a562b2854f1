"""The audit reports every inconsistency of an output as a violation, never by crashing (issue 15): manifests and
markers that are partial, malformed or tell another story than the files."""

import json
from pathlib import Path

import pytest

from lvm_data.audit import run_audit
from lvm_data.shards import layout

from .handmade import standard, write_json


def kinds(result) -> set[str]:
    return {k.value for k in result.findings.kinds()}


def manifest(c) -> dict:
    return json.loads((Path(c.root) / layout.MANIFEST).read_text())


def marker_path(c, source="coco", unit="00000") -> Path:
    return Path(c.root) / layout.marker_file(source, unit)


def source_renamed_after_a_kill(c):
    """The issue's case: a unit of the old name beside the new, the manifest listing only the new name."""
    c.write()
    document = manifest(c)
    del document["sources"]["coco"]
    write_json(layout.join(c.root, layout.MANIFEST), document)


def manifest_lists_a_source_with_no_units(c):
    c.write()
    document = manifest(c)
    document["sources"]["gone"] = {**document["sources"]["coco"]}
    write_json(layout.join(c.root, layout.MANIFEST), document)


def manifest_source_missing_a_count(c):
    c.write()
    document = manifest(c)
    del document["sources"]["coco"]["inputs"]
    write_json(layout.join(c.root, layout.MANIFEST), document)


def manifest_totals_missing(c):
    c.write()
    document = manifest(c)
    del document["totals"]
    write_json(layout.join(c.root, layout.MANIFEST), document)


def manifest_is_a_list(c):
    c.write()
    (Path(c.root) / layout.MANIFEST).write_text("[1, 2]")


def manifest_is_empty(c):
    c.write()
    (Path(c.root) / layout.MANIFEST).write_bytes(b"")


def manifest_is_cut_short(c):
    c.write()
    path = Path(c.root) / layout.MANIFEST
    path.write_bytes(path.read_bytes()[:100])


def manifest_units_empty(c):
    c.write()
    document = manifest(c)
    document["units"] = []
    write_json(layout.join(c.root, layout.MANIFEST), document)


def manifest_unit_twice(c):
    c.write()
    document = manifest(c)
    document["units"].append(document["units"][0])
    write_json(layout.join(c.root, layout.MANIFEST), document)


def manifest_unit_of_an_unlisted_source(c):
    c.write()
    document = manifest(c)
    document["units"][0] = {**document["units"][0], "source": "elsewhere"}
    write_json(layout.join(c.root, layout.MANIFEST), document)


def marker_without_counts(c):
    c.write(manifest=False)
    document = json.loads(marker_path(c).read_text())
    del document["counts"]
    write_json(str(marker_path(c)), document)


def marker_counts_as_text(c):
    c.write(manifest=False)
    document = json.loads(marker_path(c).read_text())
    document["counts"]["inputs"] = "three"
    write_json(str(marker_path(c)), document)


def marker_is_null(c):
    c.write(manifest=False)
    marker_path(c).write_text("null")


def marker_not_utf8(c):
    c.write(manifest=False)
    marker_path(c).write_bytes(b'{"source": "\xff"}')


def marker_names_a_file_outside(c):
    c.write(manifest=False)
    document = json.loads(marker_path(c).read_text())
    document["sentences_file"] = "../../elsewhere.parquet"
    write_json(str(marker_path(c)), document)


def marker_of_another_unit(c):
    c.write(manifest=False)
    document = json.loads(marker_path(c).read_text())
    document["unit"] = "00001"
    write_json(str(marker_path(c)), document)


def sentence_file_empty(c):
    c.write()
    (Path(c.root) / layout.sentences_file("coco", "00000")).write_bytes(b"")


def ledger_file_cut_short(c):
    c.write()
    path = Path(c.root) / layout.ledger_file("laion", "00001")
    path.write_bytes(path.read_bytes()[:-20])


def folder_where_a_marker_goes(c):
    c.write()
    marker_path(c).unlink()
    marker_path(c).mkdir()


MALFORMED = [
    (source_renamed_after_a_kill, {"manifest_mismatch"}),
    (manifest_lists_a_source_with_no_units, {"count_mismatch"}),
    (manifest_source_missing_a_count, {"schema_mismatch"}),
    (manifest_totals_missing, {"schema_mismatch"}),
    (manifest_is_a_list, {"schema_mismatch"}),
    (manifest_is_empty, {"unreadable_file"}),
    (manifest_is_cut_short, {"unreadable_file"}),
    (manifest_units_empty, {"manifest_mismatch"}),
    (manifest_unit_twice, {"manifest_mismatch"}),
    (manifest_unit_of_an_unlisted_source, {"manifest_mismatch"}),
    (marker_without_counts, {"schema_mismatch"}),
    (marker_counts_as_text, {"schema_mismatch"}),
    (marker_is_null, {"schema_mismatch"}),
    (marker_not_utf8, {"unreadable_file"}),
    (marker_names_a_file_outside, {"missing_file"}),
    (marker_of_another_unit, {"wrong_partition"}),
    (sentence_file_empty, {"unreadable_file"}),
    (ledger_file_cut_short, {"unreadable_file"}),
    (folder_where_a_marker_goes, {"missing_file"}),
]


@pytest.mark.parametrize(("plant", "expected"), MALFORMED, ids=[p.__name__ for p, _ in MALFORMED])
def test_a_malformed_output_is_violations_not_a_crash(tmp_path, plant, expected):
    c = standard(str(tmp_path))
    plant(c)
    result = run_audit([str(tmp_path)])
    assert not result.ok
    assert expected <= kinds(result), kinds(result)
