"""The job outputs a mix reads: their fingerprints, their sentence files, and each file's rows as MixRows.

Every input must be a job output with committed sentence files, and all inputs must come from one tokenizer
(fingerprint, codebook size, tokens per image): a mix of codes from two tokenizers means nothing, so it is
refused, naming both inputs. An input's fingerprint (for the mix hash and the manifest) is its tokenizer,
its job's config hash and its sentence files' names and sizes: a unit committed since changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq

from lvm_data import storage
from lvm_data.mix.config import MixConfig, MixConfigError
from lvm_data.mix.plan import is_validation
from lvm_data.mix.shards import MixRow
from lvm_data.shards import layout
from lvm_data.shards.manifest import read_manifest
from lvm_data.shards.reader import visible_files
from lvm_data.shards.schema import read_metadata

SMALL_COLUMNS = ["id", "source", "template", "task", "n_images"]


@dataclass(frozen=True)
class InputOutput:
    root: str
    files: tuple[tuple[str, int, int], ...]  # (sentence file URI, bytes, rows)
    tokenizer_fingerprint: str
    codebook_size: int
    tokens_per_image: int
    config_hash: str

    def fingerprint(self) -> dict:
        listing = hashlib.blake2b(digest_size=16)
        for uri, size, _rows in self.files:
            listing.update(f"{uri.removeprefix(self.root)}:{size}\x00".encode())
        return {
            "output": self.root,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
            "config_hash": self.config_hash,
            "files": len(self.files),
            "bytes": sum(f[1] for f in self.files),
            "listing": listing.hexdigest(),
        }


def describe_inputs(config: MixConfig) -> list[InputOutput]:
    found = [_describe(uri) for uri in config.inputs]
    first = found[0]
    for other in found[1:]:
        facts = ("tokenizer_fingerprint", "codebook_size", "tokens_per_image")
        if any(getattr(other, f) != getattr(first, f) for f in facts):
            raise MixConfigError(
                f"inputs {first.root} and {other.root} were tokenized by different tokenizers (fingerprint "
                f"{first.tokenizer_fingerprint[:12]} vs {other.tokenizer_fingerprint[:12]}); mix outputs of one "
                "tokenizer, or re-tokenize one of them"
            )
    return found


def _describe(root: str) -> InputOutput:
    manifest = read_manifest(root)
    files = visible_files(layout.join(root, "sentences"), ".parquet")
    if manifest is None or not files:
        raise MixConfigError(
            f"input {root}: not a finished job output (no manifest.json or no sentence files); "
            f"run `lvm-data run` for it first"
        )
    footers = [_footer(uri) for uri in files]
    meta = footers[0][2]
    listed = tuple(sorted((uri, size, rows) for uri, (size, rows, _) in zip(files, footers, strict=True)))
    return InputOutput(
        root,
        listed,
        meta.get("tokenizer_fingerprint", ""),
        int(meta.get("codebook_size", 0)),
        int(meta.get("tokens_per_image", 0)),
        manifest["job"]["config_hash"],
    )


def _footer(uri: str) -> tuple[int, int, dict[str, str]]:
    """(bytes, rows, our metadata) of a sentence file, from its footer."""
    fs, path = storage.filesystem(uri)
    with fs.open_input_file(path) as f:
        meta = pq.ParquetFile(f).metadata
        return f.size(), meta.num_rows, read_metadata(meta.metadata)


def read_rows(config: MixConfig, root: str, uri: str, tokens: bool = True) -> Iterator[tuple[str, MixRow]]:
    """(split, row) for each sentence of the file that a part selects (the first part that does, among the parts
    reading this output). `tokens=False` reads only the small columns (codes left empty, their count kept in
    n_images)."""
    parts = [p for p in config.parts if root in p.inputs]
    fs, path = storage.filesystem(uri)
    with fs.open_input_file(path) as f:
        pf = pq.ParquetFile(f)
        for g in range(pf.metadata.num_row_groups):
            table = pf.read_row_group(g, columns=SMALL_COLUMNS + (["tokens"] if tokens else []))
            yield from _rows(config, parts, root, table, tokens)


def _rows(config: MixConfig, parts, root: str, table, tokens: bool) -> Iterator[tuple[str, MixRow]]:
    columns = {name: table[name].to_pylist() for name in SMALL_COLUMNS}
    codes = table["tokens"].combine_chunks() if tokens else None
    empty = np.zeros(0, np.uint16)
    for i, sentence_id in enumerate(columns["id"]):
        source, template, task = columns["source"][i], columns["template"][i], columns["task"][i]
        part = next((p for p in parts if p.selects(source, template, task)), None)
        if part is None:
            continue
        values = codes[i].values.to_numpy(zero_copy_only=False) if codes is not None else empty
        split = "validation" if is_validation(sentence_id, config.validation) else "train"
        yield (
            split,
            MixRow(
                part.name,
                root,
                source,
                template,
                task,
                sentence_id,
                int(columns["n_images"][i]),
                np.asarray(values, np.uint16),
            ),
        )
