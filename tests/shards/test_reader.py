import numpy as np

from lvm_data.shards.ledger import LedgerRow
from lvm_data.shards.reader import list_markers, read_ledger, read_marker, read_sentences, sentence_rows, visible_files
from lvm_data.shards.writer import SentenceRow, ShardInfo, UnitCommit, commit_unit

INFO = ShardInfo("fp", 64, 2, "h")


def commit(out, unit, ids):
    rows = [
        SentenceRow(i * 32, "s", "single", "image", 1, np.array([1, 2], np.uint16), [("f", 0, "image")]) for i in ids
    ]
    ledger = [LedgerRow(f"k{i}", "s", unit, "f", "ok", "ok", "", (i * 32,)) for i in ids]
    return commit_unit(UnitCommit(out, "s", unit, "d", INFO), rows, ledger)


def test_readers_skip_temporary_names_and_concatenate(tmp_path):
    out = str(tmp_path)
    commit(out, "u1", ["a", "b"])
    commit(out, "u2", ["c"])
    (tmp_path / "sentences/source=s/.tmp-123-part-u3.parquet").write_bytes(b"partial")
    (tmp_path / "sentences/source=s/_SUCCESS.parquet").write_bytes(b"")
    assert [f.rsplit("/", 1)[-1] for f in visible_files(str(tmp_path / "sentences"), ".parquet")] == [
        "part-u1.parquet",
        "part-u2.parquet",
    ]
    assert read_sentences(out)["id"].to_pylist() == ["a" * 32, "b" * 32, "c" * 32]
    assert read_ledger(out, "s")["key"].to_pylist() == ["ka", "kb", "kc"]
    assert [m["unit"] for m in list_markers(out)] == ["u1", "u2"]
    assert read_marker(out, "s", "u2")["counts"]["ok"] == 1 and read_marker(out, "s", "u9") is None


def test_sentence_rows_round_trip(tmp_path):
    commit(str(tmp_path), "u1", ["a"])
    (back,) = sentence_rows(read_sentences(str(tmp_path)))
    assert back.id == "a" * 32 and back.tokens.dtype == np.uint16 and back.tokens.tolist() == [1, 2]
    assert back.frames == [("f", 0, "image")] and back.n_images == 1


def test_empty_output_reads_as_empty_tables(tmp_path):
    assert read_sentences(str(tmp_path)).num_rows == 0 and read_ledger(str(tmp_path)).num_rows == 0
    assert list_markers(str(tmp_path)) == []


def test_a_damaged_marker_reads_as_not_committed_with_a_warning(tmp_path, caplog):
    out = str(tmp_path)
    commit(out, "u1", ["a"])
    commit(out, "u2", ["b"])
    marker = tmp_path / "units/source=s/u2.json"
    whole = marker.read_bytes()
    for damaged in (whole[: len(whole) // 2], b"", b"\xff\xfe", b"[1, 2]", b'{"unit": "u2"}'):
        marker.write_bytes(damaged)
        caplog.clear()
        assert [m["unit"] for m in list_markers(out)] == ["u1"]
        assert read_marker(out, "s", "u2") is None
        assert [r.levelname for r in caplog.records] == ["WARNING"]  # list_markers warns, read_marker does not
        assert all(str(marker) in r.getMessage() and "redoes it" in r.getMessage() for r in caplog.records)
    marker.write_bytes(whole)
    assert [m["unit"] for m in list_markers(out)] == ["u1", "u2"]
