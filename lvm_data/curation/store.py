"""Where curation keeps its files under a job's output, and reading/writing them (each file atomic).

OUT/curation/index/removals/source=NAME/part-UNIT.parquet  items the image dedup index removes, per read unit
OUT/curation/index/index.json                            the index's commit marker, written last
OUT/curation/signatures/source=NAME/part-UNIT.parquet      token-space signatures of a unit's sentences
OUT/curation/samples/source=NAME/part-UNIT.parquet         thumbnails / tokens of some removed items
OUT/curation/report.md, report.json, contact_sheet.png     the report (`lvm-data curation-report`)

Signature and sample files are written by the unit's commit before its marker, so a committed unit has
them; removal files are written before index.json, so an index with a marker is whole.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from lvm_data import storage
from lvm_data.shards import layout
from lvm_data.shards.reader import read_parquet, visible_files
from lvm_data.shards.writer import write_parquet_atomic

ROOT = "curation"
INDEX_MARKER = f"{ROOT}/index/index.json"

REMOVAL_SCHEMA = pa.schema([("key", pa.string()), ("reason", pa.string()), ("detail", pa.string())])
SIGNATURE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("key", pa.string()),
        ("uri", pa.string()),
        ("digest", pa.string()),
        ("minhash", pa.list_(pa.uint32())),
    ]
)
SAMPLE_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("unit", pa.string()),
        ("key", pa.string()),
        ("uri", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("rank", pa.uint64()),
        ("image", pa.binary()),
        ("tokens", pa.list_(pa.uint16())),
    ]
)


def removal_file(out: str, source: str, unit: str) -> str:
    return layout.join(out, f"{ROOT}/index/removals/source={source}/part-{unit}.parquet")


def signature_file(out: str, source: str, unit: str) -> str:
    return layout.join(out, f"{ROOT}/signatures/source={source}/part-{unit}.parquet")


def sample_file(out: str, source: str, unit: str) -> str:
    return layout.join(out, f"{ROOT}/samples/source={source}/part-{unit}.parquet")


def sample_files(out: str) -> list[str]:
    return visible_files(layout.join(out, f"{ROOT}/samples"), ".parquet")


def _read_rows(uri: str) -> list[dict] | None:
    try:
        return read_parquet(uri).to_pylist()
    except FileNotFoundError:
        return None


def write_removals(out: str, source: str, unit: str, rows: list[tuple[str, str, str]]) -> None:
    """(key, reason, detail) of the items of one read unit that the index removes."""
    rows = sorted(rows)
    table = pa.table(
        {"key": [r[0] for r in rows], "reason": [r[1] for r in rows], "detail": [r[2] for r in rows]},
        schema=REMOVAL_SCHEMA,
    )
    write_parquet_atomic(removal_file(out, source, unit), table)


def read_removals(out: str, source: str, unit: str) -> dict[str, tuple[str, str]]:
    """key -> (reason, detail) of a read unit's removed items (empty when it has none)."""
    rows = _read_rows(removal_file(out, source, unit)) or []
    return {r["key"]: (r["reason"], r["detail"]) for r in rows}


def clear_index(out: str) -> None:
    """Remove what an unfinished index build left (its marker first), before building it again."""
    storage.delete(layout.join(out, INDEX_MARKER))
    for uri in storage.list_files(layout.join(out, f"{ROOT}/index")):
        storage.delete(uri)


def write_index_marker(out: str, document: dict) -> None:
    storage.write_bytes(layout.join(out, INDEX_MARKER), json.dumps(document, indent=1, sort_keys=True).encode())


def read_index_marker(out: str) -> dict | None:
    try:
        return json.loads(storage.read_bytes(layout.join(out, INDEX_MARKER)))
    except FileNotFoundError:
        return None


def write_signatures(out: str, source: str, unit: str, rows: list[tuple]) -> None:
    """(sentence id, first item key, first image uri, exact digest or None, MinHash or None) of a unit's
    candidate sentences."""
    table = pa.table(
        {
            "id": [r[0] for r in rows],
            "key": [r[1] for r in rows],
            "uri": [r[2] for r in rows],
            "digest": [r[3] for r in rows],
            "minhash": [None if r[4] is None else np.asarray(r[4], np.uint32) for r in rows],
        },
        schema=SIGNATURE_SCHEMA,
    )
    write_parquet_atomic(signature_file(out, source, unit), table)


def read_signatures(uri: str) -> list[tuple]:
    rows = _read_rows(uri) or []
    return [
        (
            r["id"],
            r["key"],
            r["uri"],
            r["digest"],
            None if r["minhash"] is None else np.asarray(r["minhash"], np.uint32),
        )
        for r in rows
    ]


def write_samples(out: str, source: str, unit: str, rows: list[dict]) -> None:
    """Sample rows (SAMPLE_SCHEMA fields) of one unit; no file when there are none."""
    if rows:
        table = pa.Table.from_pylist(
            sorted(rows, key=lambda r: (r["reason"], r["rank"], r["key"])), schema=SAMPLE_SCHEMA
        )
        write_parquet_atomic(sample_file(out, source, unit), table)


def read_samples(uri: str) -> list[dict]:
    return _read_rows(uri) or []
