"""Write a unit's Parquet files atomically, check them against the schemas, then commit its marker.

Order of a commit (DESIGN "Pipeline" 5, STYLE rule 6): the sentence file and the ledger file are
each written under a temporary name starting with '.' (which pyarrow.dataset and Hugging Face
datasets ignore) in their final folder, checked, and moved into place; the unit marker is written
last. A unit is committed exactly when its marker exists; resume reads only markers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _pc
import pyarrow.parquet as pq

from lvm_data import storage
from lvm_data.determinism import digest
from lvm_data.shards import layout
from lvm_data.shards.ledger import LedgerRow, check_ledger_table, count_rows, ledger_table
from lvm_data.shards.schema import arrow_schema, file_metadata, read_metadata, required_metadata, schema_version
from lvm_data.shards.schema import validation_errors as schema_errors

# pyarrow.compute makes its kernels (pc.equal, pc.sum, ...) at import time, so the type checker cannot
# see them: reach them through an untyped alias.
pc: Any = _pc

ROW_GROUP_TOKENS = 1 << 22  # ~8 MB of raw uint16 codes per row group: readers stream group by group
ID_PATTERN = "^([0-9a-f]{24}|[0-9a-f]{32})$"  # schemas/sentence.schema.json: 96-bit ids, 128 before
# min/max where they help readers: skipping by id, and a code-range check (audit) from footers alone
STATISTICS = ["id", "n_images", "key", "status", "reason", "tokens.list.element"]
# Sentence files: codes and the small repeated columns dictionary-encoded (13-bit codes bit-pack to 1.625 bytes);
# ids, which are unique and sorted, prefix-encoded instead (DELTA_BYTE_ARRAY: consecutive ids share their
# first hex digits), and unique frame URIs left to zstd. With row groups of ROW_GROUP_TOKENS, single-image
# files come to <= 1.7 bytes per token (`lvm-data bench pipeline`); dictionary ids cost 0.01 more.
SENTENCE_DICTIONARY = [
    "source",
    "template",
    "task",
    "n_images",
    "tokens.list.element",
    "frames.list.element.frame",
    "frames.list.element.role",
]
SENTENCE_ENCODING = {"id": "DELTA_BYTE_ARRAY"}


class ShardError(RuntimeError):
    """A file that does not match schemas/*.json; raised before it becomes visible."""


@dataclass
class SentenceRow:
    """One tokenized sentence. tokens: (n_images * tokens_per_image,) uint16; frames: (uri, index, role)."""

    id: str
    source: str
    template: str
    task: str
    n_images: int
    tokens: np.ndarray = field(repr=False)
    frames: list[tuple[str, int, str]]
    item_keys: list[str] = field(default_factory=list)
    device: str = ""  # where it was encoded (not written to the file; units record it in their marker)


@dataclass(frozen=True)
class ShardInfo:
    """What every file of a job carries in its key-value metadata."""

    tokenizer_fingerprint: str
    codebook_size: int
    tokens_per_image: int
    job_config_hash: str

    def metadata(self, source: str, unit: str, kind: str = "sentence") -> dict[bytes, bytes]:
        return file_metadata(
            schema_version=schema_version(kind),
            tokenizer_fingerprint=self.tokenizer_fingerprint,
            codebook_size=self.codebook_size,
            tokens_per_image=self.tokens_per_image,
            job_config_hash=self.job_config_hash,
            source=source,
            unit=unit,
        )


def sentence_table(rows: list[SentenceRow], info: ShardInfo, source: str, unit: str) -> pa.Table:
    """Rows sorted by id as an Arrow table with the sentence schema and the file metadata.

    Equal ids mean equal content (the id hashes source, template, items, params and frames): kept once.
    """
    unique: dict[str, SentenceRow] = {}
    for r in sorted(rows, key=lambda r: (r.id, r.tokens.tobytes())):  # a total order: arrival order never matters
        unique.setdefault(r.id, r)
    rows = list(unique.values())
    schema = arrow_schema("sentence")
    tokens = token_lists([r.tokens for r in rows])
    frames = [[{"uri": u, "frame": int(i), "role": role} for u, i, role in r.frames] for r in rows]
    columns = {
        "id": [r.id for r in rows],
        "source": [r.source for r in rows],
        "template": [r.template for r in rows],
        "task": [r.task for r in rows],
        "n_images": [r.n_images for r in rows],
        "frames": frames,
    }
    arrays = [
        tokens if name == "tokens" else pa.array(columns[name], type=schema.field(name).type) for name in schema.names
    ]
    return pa.Table.from_arrays(arrays, schema=schema.with_metadata(info.metadata(source, unit)))


def token_lists(codes: list[np.ndarray]) -> pa.ListArray:
    """The `tokens` column (list<uint16>) of rows whose codes are `codes`, built from one flat array."""
    lengths = np.array([len(c) for c in codes], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    flat = np.concatenate(codes).astype(np.uint16) if codes else np.zeros(0, np.uint16)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(flat, pa.uint16()))


def check_sentence_table(table: pa.Table, codebook_size: int, tokens_per_image: int) -> list[str]:
    """Problems of a sentence table against schemas/sentence.schema.json and the tokenizer's shape."""
    if not table.schema.remove_metadata().equals(arrow_schema("sentence")):
        return [f"columns {table.schema.remove_metadata()} differ from schemas/sentence.schema.json"]
    problems = []
    meta = read_metadata(table.schema.metadata)
    missing = [k for k in required_metadata("sentence") if k.removeprefix("lvm_data.") not in meta]
    if missing:
        problems.append(f"missing file metadata {', '.join(missing)}")
    if table.num_rows == 0:
        return problems
    if not pc.all(pc.match_substring_regex(table["id"], ID_PATTERN)).as_py():
        problems.append("ids that are not 24 (or 32) lowercase hex digits")
    if len(set(table["id"].to_pylist())) != table.num_rows:
        problems.append("duplicate sentence ids in one file")
    n_images = table["n_images"]
    if pc.min(n_images).as_py() < 1:
        problems.append("sentences with n_images < 1")
    lengths = pc.list_value_length(table["tokens"])
    if not pc.all(pc.equal(lengths, pc.multiply(n_images, tokens_per_image))).as_py():
        problems.append(f"token counts that are not n_images x {tokens_per_image}")
    if not pc.all(pc.equal(pc.list_value_length(table["frames"]), n_images)).as_py():
        problems.append("frame provenance lists whose length is not n_images")
    top = pc.max(pc.list_flatten(table["tokens"])).as_py()
    if top is not None and top >= codebook_size:
        problems.append(f"token {top} outside the codebook of {codebook_size}")
    return problems


def write_parquet_atomic(uri: str, table: pa.Table, encodings: dict | None = None) -> int:
    """Write `table` to a '.tmp-' file beside `uri`, check its footer, move it into place; returns bytes.
    `encodings`: ParquetWriter's use_dictionary / column_encoding (default: the sentence file's, for one)."""
    fs, path = storage.filesystem(uri)
    folder, name = path.rsplit("/", 1)
    fs.create_dir(folder, recursive=True)
    tmp = f"{folder}/.tmp-{uuid.uuid4().hex}-{name}"
    tokens_per_row = max(1, _mean_list_length(table))
    sentences = {"id", "tokens"} <= set(table.schema.names)
    if encodings is None:
        encodings = {"use_dictionary": SENTENCE_DICTIONARY, "column_encoding": SENTENCE_ENCODING} if sentences else {}
    # pyarrow documents write_statistics as `bool or list`; its default True alone makes the checker infer bool
    with (
        fs.open_output_stream(tmp) as stream,
        pq.ParquetWriter(
            stream,
            table.schema,
            compression="zstd",
            write_statistics=STATISTICS,  # pyright: ignore[reportArgumentType]
            **encodings,
        ) as writer,
    ):
        if table.num_rows:  # an empty unit gets a file with no row groups (readers skip it cleanly)
            writer.write_table(table, row_group_size=max(1, ROW_GROUP_TOKENS // tokens_per_row))
    with fs.open_input_file(tmp) as f:
        written = pq.read_schema(f)
    if not written.equals(table.schema) or read_metadata(written.metadata) != read_metadata(table.schema.metadata):
        fs.delete_file(tmp)
        raise ShardError(f"{uri}: the written file's schema differs from the table's; nothing was committed")
    nbytes = fs.get_file_info(tmp).size
    fs.move(tmp, path)
    return nbytes


def _mean_list_length(table: pa.Table) -> int:
    if "tokens" not in table.schema.names or table.num_rows == 0:
        return 1
    return int(pc.sum(pc.list_value_length(table["tokens"])).as_py() // table.num_rows)


@dataclass(frozen=True)
class UnitCommit:
    """Everything a unit's commit writes. `spec_digest` identifies the planned inputs (for resume)."""

    out: str
    source: str
    unit: str
    spec_digest: str
    info: ShardInfo


def commit_unit(
    commit: UnitCommit,
    rows: list[SentenceRow],
    ledger: list[LedgerRow],
    curation: dict | None = None,
    timings: Callable[[], dict] | None = None,
) -> dict:
    """`_write_unit`; when it fails (a full disk, say) the files it moved into place go again (`withdraw`)."""
    try:
        return _write_unit(commit, rows, ledger, curation, timings)
    except BaseException:
        withdraw(commit.out, commit.source, commit.unit)
        raise


def withdraw(out: str, source: str, unit: str) -> None:
    """After a failed commit, delete the unit's sentence and ledger files unless a marker names them (an earlier
    commit that a retry was rewriting), so that no file is visible without its marker. Best effort: the storage
    may be what failed, and a rerun rewrites the files anyway."""
    try:
        if storage.exists(layout.join(out, layout.marker_file(source, unit))):
            return
        for rel in (layout.sentences_file(source, unit), layout.ledger_file(source, unit)):
            storage.delete(layout.join(out, rel))
    except OSError:
        pass


def _write_unit(
    commit: UnitCommit,
    rows: list[SentenceRow],
    ledger: list[LedgerRow],
    curation: dict | None = None,
    timings: Callable[[], dict] | None = None,
) -> dict:
    """Write the sentence file, the ledger file, then the marker; returns the marker.
    `curation`: what the unit's filters removed (lvm_data.curation.units), kept in the marker's counts.
    `timings`: called after the files are written, for the marker's `timings` (time per step)."""
    sentences = sentence_table(rows, commit.info, commit.source, commit.unit)
    problems = check_sentence_table(sentences, commit.info.codebook_size, commit.info.tokens_per_image)
    ledger_tbl = ledger_table(ledger).replace_schema_metadata(
        file_metadata(
            schema_version=schema_version("ledger"),
            source=commit.source,
            unit=commit.unit,
            job_config_hash=commit.info.job_config_hash,
        )
    )
    problems += check_ledger_table(ledger_tbl.replace_schema_metadata(None))
    if problems:
        raise ShardError(f"unit {commit.source}/{commit.unit} does not match the schemas: {'; '.join(problems)}")
    sentences_rel = layout.sentences_file(commit.source, commit.unit)
    ledger_rel = layout.ledger_file(commit.source, commit.unit)
    sentences_bytes = write_parquet_atomic(layout.join(commit.out, sentences_rel), sentences)
    ledger_bytes = write_parquet_atomic(layout.join(commit.out, ledger_rel), ledger_tbl)
    marker = {
        "source": commit.source,
        "unit": commit.unit,
        "items_digest": digest(sorted(r.key for r in ledger)),
        "spec_digest": commit.spec_digest,
        "config_hash": commit.info.job_config_hash,
        "sentences_file": sentences_rel,
        "ledger_file": ledger_rel,
        "sentences_bytes": sentences_bytes,
        "ledger_bytes": ledger_bytes,
        "counts": unit_counts(rows, ledger, curation),
        "devices": sorted({r.device for r in rows if r.device}),
        "committed": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if timings is not None:
        marker["timings"] = timings()
    errors = schema_errors("unit", marker)
    if errors:
        raise ShardError(
            f"unit marker {commit.source}/{commit.unit} does not match schemas/unit.schema.json: {'; '.join(errors)}"
        )
    storage.write_bytes(
        layout.join(commit.out, layout.marker_file(commit.source, commit.unit)),
        json.dumps(marker, indent=1, sort_keys=True).encode(),
    )
    return marker


def unit_counts(rows: list[SentenceRow], ledger: list[LedgerRow], curation: dict | None = None) -> dict:
    """The unit schema's counts: ledger statuses and reasons, sentences, images, tokens (and curation)."""
    counts = {
        **count_rows(ledger),
        "sentences": len(rows),
        "images": int(sum(r.n_images for r in rows)),
        "tokens": int(sum(len(r.tokens) for r in rows)),
    }
    return counts if curation is None else {**counts, "curation": curation}
