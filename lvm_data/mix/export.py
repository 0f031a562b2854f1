"""A mix's shards in the files other trainers read: LVM's EasyLM JSONL, or packed fixed-length uint16 rows.

`export_mix(ExportConfig) -> dict` reads MIX_OUT (the output folder of `lvm-data mix`) in the mix's order (split
by split, shard by shard, rows top to bottom; one Parquet row group in memory at a time) and writes DEST:

EasyLM JSONL (format "easylm"), what LVM's `tokenize_examples/*` scripts write and EasyLM's TextProcessor reads
(`np.frombuffer(base64.b64decode(example["tokens"]), dtype="i4")`):

    DEST/SPLIT/part-SSSSS.jsonl   one per mix shard, same SPLIT and number; one line per sentence, in order:
                                  {"tokens": "<base64 of the sentence's ids as little-endian int32>"}
    The ids are the codes as-is (LVM's scripts add no BOS/EOS); with `bos` / `eos` set, [BOS] codes [EOS].

Packed rows (format "packed"), for trainers that read arrays:

    DEST/SPLIT/tokens.bin   raw little-endian uint16, rows x L (row-major): the split's sentences as
                            [BOS] codes [EOS], back to back in order, cut every L tokens; the last row is
                            filled up with PAD (meta.json counts the pad tokens)
    DEST/SPLIT/index.npy    int64, shape (sentences + 1,): sentence i is flat[index[i]:index[i + 1]] (its BOS
                            to its EOS) of tokens.bin read as one flat array; index[-1] = the tokens before the
                            padding; a sentence starts in row index // L at column index % L
    DEST/SPLIT/meta.json    {format, L, rows, sentences, codes, tokens, pad_tokens, bos, eos, pad, dtype,
                            codebook_size, tokens_per_image, tokenizer_fingerprint, mix_hash, source}

    DEST/export.json        written last, for both formats: the format, the source mix, the ids and each split's
                            files and counts.

Ids: BOS, EOS and PAD default to codebook_size, codebook_size + 1 and codebook_size + 2 (`lvm-data train`'s
vocabulary); explicit ids must be >= codebook_size (and < 65536 for uint16 rows). Every file is streamed to a
'.tmp-' name and moved into place; an export replaces the files of an earlier one in DEST (any other file
there is refused), so a rerun after a kill writes the whole export again.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _pc
import pyarrow.parquet as pq

from lvm_data import storage
from lvm_data.mix.shards import MANIFEST, SCHEMA_VERSION, SPLITS, shard_file
from lvm_data.shards.schema import read_metadata

# pyarrow.compute makes its kernels (pc.equal, pc.sum, ...) at import time, so the type checker cannot
# see them: reach them through an untyped alias.
pc: Any = _pc

FORMATS = ("easylm", "packed")
DEFAULT_ID = -1  # bos / eos / pad: the default id (codebook_size, + 1, + 2)
DEFAULT_LENGTH = 4096  # LVM's context: 16 images of 256 codes
EXPORT_FILE = "export.json"
INT32_MAX, UINT16_IDS = 2**31 - 1, 1 << 16
OURS = re.compile(r"^(export\.json|(train|validation)/(part-\d{5}\.jsonl|tokens\.bin|index\.npy|meta\.json))$")


class ExportError(ValueError):
    """An export that cannot be written: the message names the option or path and the fix."""


@dataclass(frozen=True)
class ExportConfig:
    """mix: a mix output folder; dest: the export's folder. bos / eos / pad: None (EasyLM: not written; packed:
    the default), DEFAULT_ID or an id. length: tokens per packed row (None: DEFAULT_LENGTH)."""

    mix: str
    dest: str
    format: str = "easylm"
    bos: int | None = None
    eos: int | None = None
    pad: int | None = None
    length: int | None = None


@dataclass(frozen=True)
class Ids:
    bos: int | None
    eos: int | None
    pad: int | None


@dataclass(frozen=True)
class MixSource:
    """A committed mix: its shard files per split, in order, with their row counts; its tokenizer."""

    root: str
    mix_hash: str
    name: str
    codebook_size: int
    tokens_per_image: int
    tokenizer_fingerprint: str
    shards: dict[str, list[tuple[int, str, int]]]  # split -> [(shard, uri, rows)]

    def facts(self) -> dict:
        return {
            "source": self.root,
            "mix": self.name,
            "mix_hash": self.mix_hash,
            "codebook_size": self.codebook_size,
            "tokens_per_image": self.tokens_per_image,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
        }


# --- options and inputs ------------------------------------------------------------------------------------


def resolve_ids(config: ExportConfig, codebook_size: int) -> Ids:
    """The ids the export writes, checked against the codebook (codes are 0 .. codebook_size - 1)."""
    if config.format not in FORMATS:
        raise ExportError(f"--format {config.format!r}: use one of {', '.join(FORMATS)}")
    packed = config.format == "packed"
    if not packed and (config.pad is not None or config.length is not None):
        option = "--pad" if config.pad is not None else "--length"
        raise ExportError(f"{option} applies to --format packed only (EasyLM lines are not padded); drop it")
    if packed and codebook_size + 3 > UINT16_IDS:
        raise ExportError(
            f"a codebook of {codebook_size} codes leaves no uint16 ids for BOS, EOS and PAD "
            "(packed rows are uint16); use --format easylm (int32 ids)"
        )
    chosen = {}
    for offset, name in enumerate(("bos", "eos", "pad")):
        value = getattr(config, name)
        if value is None and not packed:
            chosen[name] = None
            continue
        chosen[name] = codebook_size + offset if value in (None, DEFAULT_ID) else value
        _check_id(name, chosen[name], codebook_size + offset, codebook_size, UINT16_IDS - 1 if packed else INT32_MAX)
    given = [v for v in chosen.values() if v is not None]
    if len(set(given)) != len(given):
        raise ExportError(f"--bos, --eos and --pad must differ (got {chosen}); give each its own id")
    return Ids(chosen["bos"], chosen["eos"], chosen["pad"])


def _check_id(name: str, value: int, default: int, codebook_size: int, high: int) -> None:
    if value < codebook_size:
        raise ExportError(
            f"--{name} {value} is a code of the mix's codebook (0..{codebook_size - 1}); give an id "
            f">= {codebook_size}, or --{name} alone for {default}"
        )
    if value > high:
        raise ExportError(
            f"--{name} {value} does not fit the export's ids (at most {high}"
            f"{': packed rows are uint16' if high < INT32_MAX else ''}); give a smaller id"
        )


def resolve_length(config: ExportConfig) -> int:
    length = DEFAULT_LENGTH if config.length is None else config.length
    if length < 2:
        raise ExportError(
            f"--length {length}: a packed row needs at least 2 tokens; LVM trains on rows of {DEFAULT_LENGTH}"
        )
    return length


def _local(uri: str) -> str:
    return uri.rstrip("/") if storage.is_remote(uri) else storage.filesystem(uri)[1]


def open_mix(uri: str) -> MixSource:
    """MIX_OUT's manifest and shard files, checked: every shard the manifest lists is there and of this mix."""
    root = _local(uri)
    manifest_uri = storage.join(root, MANIFEST)
    if not storage.exists(manifest_uri):
        raise ExportError(
            f"{uri}: not a mix output (no {MANIFEST}); pass the output folder of `lvm-data mix`, "
            "or run `lvm-data mix MIX.yaml` first"
        )
    manifest = json.loads(storage.read_bytes(manifest_uri))
    if manifest.get("schema_version") != SCHEMA_VERSION or "shards" not in manifest:
        kind = "a job output (`lvm-data run`)" if "job" in manifest else "not a mix output"
        raise ExportError(
            f"{uri}: {kind}, its {MANIFEST} is no mix manifest; mix it first (`lvm-data mix "
            "MIX.yaml` with it among the inputs) and export the mix's output folder"
        )
    shards: dict[str, list[tuple[int, str, int]]] = {split: [] for split in SPLITS}
    meta: dict[str, str] = {}
    for entry in sorted(manifest["shards"], key=lambda s: (SPLITS.index(s["split"]), s["shard"])):
        file = storage.join(root, shard_file(entry["split"], entry["shard"]))
        if not storage.exists(file):
            raise ExportError(
                f"{file}: listed in {manifest_uri} but missing; rerun `lvm-data mix` on the mix file to write it"
            )
        with storage.open_input(file) as f:
            footer = pq.ParquetFile(f).metadata
        meta = read_metadata(footer.metadata)
        if meta.get("mix_hash") != manifest["mix_hash"]:
            raise ExportError(
                f"{file}: belongs to another mix (mix hash {meta.get('mix_hash', '')[:12]} vs "
                f"{manifest['mix_hash'][:12]}); rerun `lvm-data mix` into a new output folder"
            )
        shards[entry["split"]].append((entry["shard"], file, footer.num_rows))
    if not shards["train"]:
        raise ExportError(f"{uri}: the mix has no train shards; rerun `lvm-data mix` on its mix file")
    return MixSource(
        root,
        manifest["mix_hash"],
        manifest.get("name", ""),
        int(meta["codebook_size"]),
        int(meta["tokens_per_image"]),
        meta.get("tokenizer_fingerprint", ""),
        {split: files for split, files in shards.items() if files},
    )


def check_dest(dest: str, source: MixSource) -> None:
    """DEST may be new, or hold an earlier export (its files are replaced); anything else there is refused."""
    if dest == source.root:
        raise ExportError(f"--dest {dest} is the mix's own folder; export to another folder")
    for uri in storage.list_files(dest):
        relative = uri[len(dest) + 1 :]
        if not OURS.match(relative) and not relative.rsplit("/", 1)[-1].startswith(".tmp-"):
            raise ExportError(
                f"--dest {dest}: holds {relative}, which no export writes; export to a new or empty "
                "folder (an earlier export there is replaced)"
            )


def shard_batches(source: MixSource, split: str, uri: str) -> Iterator[pa.ListArray]:
    """The tokens column of one shard, row group by row group, codes checked against the codebook."""
    with storage.open_input(uri) as f:
        pf = pq.ParquetFile(f)
        for g in range(pf.metadata.num_row_groups):
            tokens = pf.read_row_group(g, columns=["tokens"])["tokens"].combine_chunks()
            top = pc.max(pc.list_flatten(tokens)).as_py()
            if top is not None and top >= source.codebook_size:
                raise ExportError(
                    f"{uri}: holds code {top}, beyond the mix's codebook of {source.codebook_size}; "
                    "audit the mix's inputs (`lvm-data audit --deep`) and mix again"
                )
            yield tokens


def with_specials(tokens: pa.ListArray, bos: int | None, eos: int | None, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(flat, offsets): sentence i of the batch is flat[offsets[i]:offsets[i + 1]], [BOS] codes [EOS] where set."""
    offsets = tokens.offsets.to_numpy().astype(np.int64)  # (n + 1,) into tokens.values, not shifted by slicing
    codes = tokens.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
    offsets -= offsets[0]
    lengths = np.diff(offsets)  # (n,)
    head, extra = int(bos is not None), int(bos is not None) + int(eos is not None)
    out = np.concatenate([[0], np.cumsum(lengths + extra)]).astype(np.int64)
    flat = np.empty(out[-1], dtype)
    flat[np.arange(len(codes)) + np.repeat(out[:-1] + head - offsets[:-1], lengths)] = codes
    if bos is not None:
        flat[out[:-1]] = bos
    if eos is not None:
        flat[out[1:] - 1] = eos
    return flat, out


@contextlib.contextmanager
def atomic_stream(uri: str):
    """A binary output stream to a '.tmp-' name beside `uri`, moved into place when the block ends cleanly."""
    fs, path = storage.filesystem(uri)
    folder, name = path.rsplit("/", 1)
    fs.create_dir(folder, recursive=True)
    tmp = f"{folder}/.tmp-{uuid.uuid4().hex}-{name}"
    try:
        with fs.open_output_stream(tmp) as stream:
            yield stream
    except BaseException:
        with contextlib.suppress(OSError):
            fs.delete_file(tmp)
        raise
    fs.move(tmp, path)


# --- the two formats ---------------------------------------------------------------------------------------


def write_easylm(source: MixSource, split: str, ids: Ids, dest: str) -> dict:
    """DEST/SPLIT/part-SSSSS.jsonl per shard: {"tokens": base64(int32 LE ids)} per sentence, in order."""
    files, sentences, codes, tokens = [], 0, 0, 0
    for shard, uri, _rows in source.shards[split]:
        relative = f"{split}/part-{shard:05d}.jsonl"
        with atomic_stream(storage.join(dest, relative)) as stream:
            for batch in shard_batches(source, split, uri):
                flat, offsets = with_specials(batch, ids.bos, ids.eos, "<i4")
                raw = memoryview(flat.tobytes())
                stream.write(
                    b"".join(
                        b'{"tokens": "' + base64.b64encode(raw[4 * a : 4 * b]) + b'"}\n'
                        for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)
                    )
                )
                sentences += len(batch)
                codes += len(flat) - (len(offsets) - 1) * ((ids.bos is not None) + (ids.eos is not None))
                tokens += len(flat)
        files.append(relative)
    return {"files": files, "sentences": sentences, "codes": codes, "tokens": tokens}


def write_packed(source: MixSource, split: str, ids: Ids, length: int, dest: str) -> dict:
    """DEST/SPLIT/tokens.bin, index.npy and meta.json (last): see the module docstring."""
    sentences = sum(rows for _, _, rows in source.shards[split])
    carry, position, written = np.zeros(0, "<u2"), 0, 0
    with (
        atomic_stream(storage.join(dest, split, "tokens.bin")) as rows_out,
        atomic_stream(storage.join(dest, split, "index.npy")) as index_out,
    ):
        np.lib.format.write_array_header_1_0(
            index_out, {"descr": "<i8", "fortran_order": False, "shape": (sentences + 1,)}
        )
        for _shard, uri, _rows in source.shards[split]:
            for batch in shard_batches(source, split, uri):
                flat, offsets = with_specials(batch, ids.bos, ids.eos, "<u2")
                index_out.write((offsets[:-1] + position).astype("<i8").tobytes())
                position, written = position + int(offsets[-1]), written + len(batch)
                carry = np.concatenate([carry, flat])
                full = len(carry) // length * length
                rows_out.write(carry[:full].tobytes())
                carry = carry[full:]
        if written != sentences:
            raise ExportError(
                f"{source.root}: {split} shards hold {written} rows, their footers said {sentences}; "
                "the mix changed while it was read: export again"
            )
        pad_tokens = (length - len(carry)) % length
        rows_out.write(np.concatenate([carry, np.full(pad_tokens, ids.pad, "<u2")]).tobytes())
        index_out.write(np.array([position], "<i8").tobytes())
    meta = {
        "format": "packed-uint16",
        "L": length,
        "rows": (position + pad_tokens) // length,
        "sentences": sentences,
        "codes": position - 2 * sentences,
        "tokens": position,
        "pad_tokens": pad_tokens,
        "bos": ids.bos,
        "eos": ids.eos,
        "pad": ids.pad,
        "dtype": "<u2",
        **source.facts(),
    }
    storage.write_bytes(storage.join(dest, split, "meta.json"), json.dumps(meta, indent=1, sort_keys=True).encode())
    return {"files": [f"{split}/tokens.bin", f"{split}/index.npy", f"{split}/meta.json"], **meta}


# --- the command -------------------------------------------------------------------------------------------


def export_mix(config: ExportConfig) -> dict:
    """Check the options and folders, write every split, drop an earlier export's leftovers, then export.json."""
    source = open_mix(config.mix)
    ids = resolve_ids(config, source.codebook_size)
    length = resolve_length(config) if config.format == "packed" else None
    dest = _local(config.dest)
    check_dest(dest, source)
    splits = {}
    for split in source.shards:
        splits[split] = (
            write_packed(source, split, ids, length, dest)
            if length is not None
            else write_easylm(source, split, ids, dest)
        )
    written = {f for s in splits.values() for f in s["files"]}
    for uri in storage.list_files(dest):
        relative = uri[len(dest) + 1 :]
        if relative not in written and relative != EXPORT_FILE:
            storage.delete(uri)  # check_dest let only an earlier export's files (and '.tmp-' leftovers) be here
    record = {
        "format": "easylm-jsonl" if length is None else "packed-uint16",
        "dest": dest,
        "dtype": "<i4" if length is None else "<u2",
        "bos": ids.bos,
        "eos": ids.eos,
        "pad": ids.pad,
        "L": length,
        **source.facts(),
        "splits": splits,
    }
    storage.write_bytes(storage.join(dest, EXPORT_FILE), json.dumps(record, indent=1, sort_keys=True).encode())
    return record
