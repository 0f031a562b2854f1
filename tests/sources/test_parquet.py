import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lvm_data.items import ERROR_META
from lvm_data.sources.listing import SourceError
from lvm_data.sources.parquet import ParquetImages


def source(paths, **options):
    return ParquetImages("pq", {"format": "parquet", "paths": paths, "shard_size": 3, **options})


def test_binary_column_units_are_row_ranges_over_row_groups(tmp_path):
    path = tmp_path / "images.parquet"
    table = pa.table({"image": [f"img{i}".encode() for i in range(7)], "label": list(range(7)),
                      "id": [f"k{i}" for i in range(7)]})
    pq.write_table(table, path, row_group_size=2)
    src = source(str(path), key_column="id", meta_columns=["label"])
    units = src.plan()
    assert [(u.spec[1:], u.n_items) for u in units] == [((0, 3), 3), ((3, 6), 3), ((6, 7), 1)]
    refs = [r for u in units for r in src.read(u)]
    assert [r.key for r in refs] == [f"k{i}" for i in range(7)]
    assert [r.parts["image"].data for r in refs] == [f"img{i}".encode() for i in range(7)]
    assert refs[4].meta == {"label": 4} and refs[4].parts["image"].uri == f"{path}#row=4"


def test_hugging_face_struct_column_and_nulls(tmp_path, monkeypatch):
    path = tmp_path / "hf.parquet"
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    cells = [{"bytes": b"abc", "path": "cat.jpg"}, {"bytes": None, "path": str(tmp_path / "dog.png")}, None]
    pq.write_table(pa.table({"img": pa.array(cells, type=image)}), path)
    src = source(str(path), column="img")
    refs = list(src.read(src.plan()[0]))
    assert refs[0].key == f"{path}#0" and refs[0].parts["image"].data == b"abc" and refs[0].meta == {"path": "cat.jpg"}
    assert refs[1].parts["image"].uri == str(tmp_path / "dog.png") and refs[1].parts["image"].data is None
    assert refs[2].meta[ERROR_META]["reason"] == "empty_file"


def test_missing_column_names_the_file_and_the_columns(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"jpg": [b"1"]}), path)
    with pytest.raises(SourceError, match=r"has no column 'image'; its columns are jpg; set input.column"):
        source(str(path)).plan()


def test_unreadable_file_is_a_plan_error(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_bytes(b"nope")
    with pytest.raises(SourceError, match="is not a readable Parquet file"):
        source(str(path)).plan()


def test_repeated_keys_become_failed_rows_not_merged_rows(tmp_path):
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.table({"image": [b"1", b"2", b"3"], "id": ["x", "y", "x"]}), path)
    src = source(str(path), key_column="id")
    refs = list(src.read(src.plan()[0]))
    assert [r.key for r in refs] == ["x", "y", "x#row=2"]
    assert refs[2].meta[ERROR_META]["reason"] == "read_error" and "repeats row 0" in refs[2].meta[ERROR_META]["detail"]
