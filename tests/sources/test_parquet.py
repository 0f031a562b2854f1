import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from lvm_data.items import ERROR_META
from lvm_data.media.contract import DecodeSettings
from lvm_data.media.decode import decode_item
from lvm_data.outcomes import ItemError, Reason, Status, status_of
from lvm_data.sources.listing import SourceError
from lvm_data.sources.parquet import ParquetImages


def source(paths, **options):
    return ParquetImages("pq", {"format": "parquet", "paths": paths, "shard_size": 3, **options})


def test_binary_column_units_are_row_ranges_over_row_groups(tmp_path):
    path = tmp_path / "images.parquet"
    table = pa.table(
        {"image": [f"img{i}".encode() for i in range(7)], "label": list(range(7)), "id": [f"k{i}" for i in range(7)]}
    )
    pq.write_table(table, path, row_group_size=2)
    src = source(str(path), key_column="id", meta_columns=["label"])
    units = src.plan()
    assert [(u.spec[1:], u.n_items) for u in units] == [
        ((0, 3, "images.parquet"), 3),
        ((3, 6, "images.parquet"), 3),
        ((6, 7, "images.parquet"), 1),
    ]  # the file's key last
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
    assert refs[0].key == "hf.parquet#0" and refs[0].parts["image"].data == b"abc"
    assert refs[0].meta == {"path": "cat.jpg"}
    assert refs[0].parts["image"].uri == f"{path}#row=0"  # the key is the file's name and row, the URI its location
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


def jpeg(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (24, 16), color).save(out, format="JPEG")
    return out.getvalue()


def write_img2dataset_shard(path, encode_format: str = "jpg") -> list[bytes]:
    """A shard as img2dataset's parquet writer leaves it: two images, a failed download, a failed resize."""
    pics = [jpeg((200, 30, 30)), jpeg((30, 200, 30))]
    rows = [
        ("000000000", pics[0], "success", None),
        ("000000001", None, "failed_to_download", "HTTP 404"),
        ("000000002", pics[1], "success", None),
        ("000000003", None, "failed_to_resize", "image too small"),
    ]
    pq.write_table(
        pa.table(
            {
                "key": [r[0] for r in rows],
                encode_format: pa.array([r[1] for r in rows], pa.binary()),
                "url": [f"http://example.com/{i}.jpg" for i in range(4)],
                "caption": ["red", "gone", "green", None],
                "width": [24, None, 24, None],
                "height": [16, None, 16, None],
                "original_width": [24, None, 24, 2],
                "original_height": [16, None, 16, 2],
                "exif": [None] * 4,
                "sha256": [None] * 4,
                "status": [r[2] for r in rows],
                "error_message": [r[3] for r in rows],
            }
        ),
        path,
    )
    (path.parent / path.name.replace(".parquet", "_stats.json")).write_text(json.dumps({"count": 4}))
    return pics


def test_img2dataset_output_folder_reads_with_no_options(tmp_path):
    pics = write_img2dataset_shard(tmp_path / "00000.parquet")
    (tmp_path / "00000.tar").write_bytes(b"not a parquet file")  # a folder listing keeps only .parquet files
    src = source(str(tmp_path))
    units = src.plan()
    assert [u.spec[0] for u in units] == [str(tmp_path / "00000.parquet")] * 2
    refs = [r for u in units for r in src.read(u)]
    assert [r.key for r in refs] == ["000000000", "000000001", "000000002", "000000003"]
    assert [refs[0].parts["image"].data, refs[2].parts["image"].data] == pics
    assert refs[0].meta == {"caption": "red", "url": "http://example.com/0.jpg"}
    where = f"{tmp_path / '00000.parquet'}#row=1"
    assert refs[1].meta[ERROR_META] == {
        "reason": "download_failed",
        "uri": where,
        "detail": f"{where}: img2dataset status 'failed_to_download': HTTP 404",
    }
    assert refs[3].meta[ERROR_META]["reason"] == "download_failed"
    assert "'failed_to_resize': image too small" in refs[3].meta[ERROR_META]["detail"]
    frames = [decode_item(r, DecodeSettings(16)).frames[0].pixels for r in (refs[0], refs[2])]
    assert frames[0][8, 8, 0] > 150 and frames[1][8, 8, 1] > 150  # the red and the green photo
    with pytest.raises(ItemError) as err:
        decode_item(refs[1], DecodeSettings(16))
    assert err.value.reason is Reason.DOWNLOAD_FAILED and status_of(err.value.reason) is Status.FAILED


def test_img2dataset_png_column_and_explicit_options_win(tmp_path):
    write_img2dataset_shard(tmp_path / "00000.parquet", encode_format="png")
    src = source(str(tmp_path), shard_size=10)
    refs = list(src.read(src.plan()[0]))
    assert refs[0].parts["image"].data[:3] == b"\xff\xd8\xff" and refs[0].key == "000000000"
    src = source(str(tmp_path), shard_size=10, column="url", key_column="url", meta_columns=["width"])
    refs = list(src.read(src.plan()[0]))
    assert refs[0].parts["image"].uri == "http://example.com/0.jpg" and refs[0].key == "http://example.com/0.jpg"
    assert refs[0].meta == {"width": 24} and refs[1].meta[ERROR_META]["reason"] == "download_failed"


def test_layout_plain_turns_detection_off_and_a_bad_layout_is_named(tmp_path):
    write_img2dataset_shard(tmp_path / "00000.parquet")
    src = source(str(tmp_path), layout="plain", column="jpg", shard_size=10)
    refs = list(src.read(src.plan()[0]))
    assert refs[1].key.endswith("00000.parquet#1") and refs[1].meta[ERROR_META]["reason"] == "empty_file"
    with pytest.raises(SourceError, match=r"input.layout: 'webdatset' is not a parquet layout; use one of auto"):
        source(str(tmp_path), layout="webdatset").plan()


def test_img2dataset_metadata_beside_tars_says_to_read_the_tars(tmp_path):
    pq.write_table(
        pa.table({"key": ["000000000"], "url": ["u"], "status": ["success"], "error_message": [None]}),
        tmp_path / "00000.parquet",
    )
    with pytest.raises(SourceError, match=r"has no column 'image'.*read the .tar files with format: webdataset"):
        source(str(tmp_path)).plan()
