"""Read what a job wrote: unit markers, sentence and ledger files, file metadata.

Readers see only committed, whole files: temporary files start with '.', which every reader here
(and pyarrow.dataset, Hugging Face datasets) skips.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lvm_data import storage
from lvm_data.shards import layout
from lvm_data.shards.schema import arrow_schema, read_metadata
from lvm_data.shards.writer import SentenceRow

READ_THREADS = 16

log = logging.getLogger(__name__)


def parse_marker(data: bytes) -> dict | None:
    """A marker file's content as a dict, or None when it is damaged (not a whole JSON object naming its source
    and unit). A marker is written atomically, so a damaged one was cut or overwritten from outside."""
    try:
        marker = json.loads(data)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        return None
    if (
        not isinstance(marker, dict)
        or not isinstance(marker.get("source"), str)
        or not isinstance(marker.get("unit"), str)
    ):
        return None
    return marker


def _load_marker(uri: str) -> dict | None:
    """The marker at `uri`; None (with a warning naming the file) when it is damaged: its unit then counts as not
    committed, so a run redoes it (its files are rewritten whole, then a whole marker replaces the damaged one)."""
    marker = parse_marker(storage.read_bytes(uri))
    if marker is None:
        log.warning(
            "unit marker %s is damaged (not a whole JSON object); its unit counts as not "
            "committed: a run redoes it and replaces the marker",
            uri,
        )
    return marker


def read_marker(out: str, source: str, unit: str) -> dict | None:
    """The commit marker of a unit, or None when the unit is not committed or its marker is damaged (planning,
    through `list_markers`, has warned about it)."""
    uri = layout.join(out, layout.marker_file(source, unit))
    try:
        return parse_marker(storage.read_bytes(uri))
    except FileNotFoundError:
        return None


def list_markers(out: str, source: str | None = None) -> list[dict]:
    """Every committed unit's marker (optionally of one source), sorted by (source, unit). A damaged marker is
    left out with a warning: its unit counts as not committed."""
    prefix = layout.join(out, "units" if source is None else f"units/source={source}")
    uris = visible_files(prefix, ".json")
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:  # object stores: many small reads at once
        markers = [m for m in pool.map(_load_marker, uris) if m is not None]
    return sorted(markers, key=lambda m: (m["source"], m["unit"]))


def visible_files(prefix: str, suffix: str) -> list[str]:
    """Files under `prefix` ending in `suffix`, skipping names that start with '.' or '_' (temporary)."""
    return [
        uri
        for uri in storage.list_files(prefix)
        if uri.endswith(suffix) and not uri.rsplit("/", 1)[-1].startswith((".", "_"))
    ]


def read_parquet(uri: str, columns: list[str] | None = None) -> pa.Table:
    fs, path = storage.filesystem(uri)
    with fs.open_input_file(path) as f:
        return pq.read_table(f, columns=columns)


def file_metadata(uri: str) -> dict[str, str]:
    """Our key-value metadata of one Parquet file (prefix stripped)."""
    fs, path = storage.filesystem(uri)
    with fs.open_input_file(path) as f:
        return read_metadata(pq.read_schema(f).metadata)


def _concat(uris: list[str], kind: str, columns: list[str] | None) -> pa.Table:
    schema = arrow_schema(kind)
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    tables = [read_parquet(uri, columns).replace_schema_metadata(None) for uri in uris]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def sentence_files(out: str, source: str | None = None) -> list[str]:
    return visible_files(layout.join(out, "sentences" if source is None else f"sentences/source={source}"), ".parquet")


def ledger_files(out: str, source: str | None = None) -> list[str]:
    return visible_files(layout.join(out, "ledger" if source is None else f"ledger/source={source}"), ".parquet")


def read_sentences(out: str, source: str | None = None, columns: list[str] | None = None) -> pa.Table:
    """All sentence rows of a job output (or one source), file by file in sorted order."""
    return _concat(sentence_files(out, source), "sentence", columns)


def read_ledger(out: str, source: str | None = None) -> pa.Table:
    """All ledger rows of a job output (or one source)."""
    return _concat(ledger_files(out, source), "ledger", None)


def read_unit_files(out: str, marker: dict) -> tuple[pa.Table, pa.Table]:
    """(sentences, ledger) of one committed unit, as its marker names them."""
    return (
        read_parquet(layout.join(out, marker["sentences_file"])),
        read_parquet(layout.join(out, marker["ledger_file"])),
    )


def sentence_rows(table: pa.Table) -> list[SentenceRow]:
    """Rows of a sentence table as SentenceRow values (tokens as uint16 arrays)."""
    if not table.num_rows:
        return []
    tokens = table["tokens"].combine_chunks()
    rows = []
    for i, r in enumerate(table.drop_columns(["tokens"]).to_pylist()):
        codes = tokens[i].values.to_numpy(zero_copy_only=False).astype(np.uint16)
        rows.append(
            SentenceRow(
                id=r["id"],
                source=r["source"],
                template=r["template"],
                task=r["task"],
                n_images=r["n_images"],
                tokens=codes,
                frames=[(f["uri"], f["frame"], f["role"]) for f in r["frames"]],
            )
        )
    return rows
