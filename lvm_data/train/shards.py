"""The trainer's view of a job's sentence shards: which files, which row groups, what vocabulary.

DATA may be a job output folder (its sentences/ is read), a folder of Parquet files, one file, or a
glob, local or gs://. Every file must carry the sentence metadata (lvm_data.shards.schema) and all
files must agree on tokenizer fingerprint, codebook size and tokens per image.

DATA may also be a mix output (`lvm-data mix`: manifest.json of schema mix-1.0 beside train/): its train/
shards are then the corpus, in file order (`Corpus.mix`: the stream reads them in that order, rows top to
bottom, since the mix is the shuffle), and its validation/ shards are the held-out set (`open_mix_validation`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq

from lvm_data import storage
from lvm_data.mix import shards as mix_shards
from lvm_data.shards import layout
from lvm_data.shards.reader import visible_files
from lvm_data.shards.schema import read_metadata

VAL_SALT = b"lvm_data.train.validation"
READ_COLUMNS = ["id", "source", "n_images", "tokens"]
MIX_ID = "sentence_id"  # a mix row's id column (its sentence's id in the job output it came from)
SMALL_SOURCE_ROWS = 100_000


class DataError(ValueError):
    """Shards the trainer cannot use; the message names the file and what to do."""


@dataclass(frozen=True)
class RowGroup:
    file: int  # index into Corpus.files
    index: int  # row group within the file
    rows: int


@dataclass(frozen=True)
class Corpus:
    """The shard files of DATA with their row groups and the vocabulary facts they share."""

    data: str
    files: tuple[str, ...]
    groups: tuple[RowGroup, ...]
    file_sources: tuple[str, ...]
    codebook_size: int
    tokens_per_image: int
    tokenizer_fingerprint: str
    mix: bool = False  # a mix's split: read in file order, rows top to bottom; ids in its sentence_id column

    @property
    def id_column(self) -> str:
        return MIX_ID if self.mix else "id"

    @property
    def fingerprint(self) -> str:
        """Hash of the file list and row-group sizes: a saved stream position is valid only for this."""
        text = json.dumps([self.files, [(g.file, g.index, g.rows) for g in self.groups]])
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    @property
    def sources(self) -> list[str]:
        return sorted(set(self.file_sources))


@dataclass
class SentenceBatch:
    """Rows of one row group: sentence i has tokens[offsets[i]:offsets[i+1]] (uint16)."""

    ids: list[str]
    sources: list[str]
    offsets: np.ndarray
    tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def sentence(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def split_keys(self) -> list[str]:
        """What decides each sentence's split: a digest of its codes (`content_key`)."""
        return [content_key(self.sentence(i)) for i in range(len(self))]


def content_key(codes: np.ndarray) -> str:
    """A sentence's split key: a digest of its codes, not its id. Ids are location-free too (item keys relative to
    their paths entry, frame names), but codes are what the model sees: they are the same wherever the inputs live,
    and whatever the source, template or key a sentence came from."""
    return hashlib.blake2b(np.ascontiguousarray(codes, dtype=np.uint16).tobytes(), digest_size=16).hexdigest()


def shard_files(data: str) -> list[str]:
    """Sorted Parquet files named by DATA (see module docstring)."""
    if re.search(r"[*?\[]", data):
        files = storage.glob(data)
    elif data.endswith(".parquet"):
        files = [data] if storage.exists(data) else []
    else:
        sentences = layout.join(data, "sentences")
        root = sentences if storage.exists(sentences) else data
        files = storage.list_files(root)
    files = [f for f in files if f.endswith(".parquet") and not f.rsplit("/", 1)[-1].startswith(".")]
    if not files:
        raise DataError(
            f"{data}: no Parquet sentence files found; pass a job output folder (with sentences/), "
            "a folder of .parquet files, one file or a glob"
        )
    return files


def mix_manifest(data: str) -> dict | None:
    """The manifest of DATA when DATA is a mix output folder (schema mix-1.0), else None."""
    if re.search(r"[*?\[]", data) or data.endswith(".parquet"):
        return None
    uri = layout.join(data, mix_shards.MANIFEST)
    if not storage.exists(uri):
        return None
    try:
        manifest = json.loads(storage.read_bytes(uri))
    except ValueError:
        return None
    return (
        manifest if isinstance(manifest, dict) and manifest.get("schema_version") == mix_shards.SCHEMA_VERSION else None
    )


def mix_files(data: str, manifest: dict, split: str) -> list[str]:
    """A mix's shard files of `split`, in the mix's order; every shard the manifest lists must be there."""
    files = sorted(visible_files(layout.join(data, split), ".parquet"))
    listed = sum(1 for s in manifest.get("shards", []) if s.get("split") == split)
    if len(files) != listed:
        raise DataError(
            f"{data}: the manifest lists {listed} {split} shards but {split}/ holds {len(files)}; "
            "rerun `lvm-data mix` on its mix file to finish or repair it"
        )
    return files


def _footer(uri: str) -> tuple[dict[str, str], list[int], list[str]]:
    fs, path = storage.filesystem(uri)
    with fs.open_input_file(path) as f:
        meta = pq.ParquetFile(f).metadata
    rows = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    return read_metadata(meta.metadata), rows, meta.schema.to_arrow_schema().names


def open_corpus(data: str, threads: int = 8) -> Corpus:
    """Read every file's footer (in parallel) and check that the files belong together. For a mix output
    (`mix_manifest`) the corpus is its train/ shards, with `mix` set."""
    manifest = mix_manifest(data)
    if manifest is None:
        return _open(data, shard_files(data), False, threads)
    files = mix_files(data, manifest, "train")
    corpus = _open(data, files, True, threads) if files else None
    if corpus is None or not corpus.groups:
        raise DataError(f"{data}: the mix's train/ shards hold no rows; check the mix file's parts")
    return corpus


def open_mix_validation(corpus: Corpus, threads: int = 8) -> Corpus | None:
    """The validation/ shards of the mix `corpus` came from (None when the mix holds none), checked against it."""
    manifest = mix_manifest(corpus.data)
    files = mix_files(corpus.data, manifest, "validation") if corpus.mix and manifest is not None else []
    if not files:
        return None
    held_out = _open(corpus.data, files, True, threads)
    facts = (held_out.tokenizer_fingerprint, held_out.codebook_size, held_out.tokens_per_image)
    if facts != (corpus.tokenizer_fingerprint, corpus.codebook_size, corpus.tokens_per_image):
        raise DataError(
            f"{files[0]}: tokenizer facts {facts} differ from the mix's train/ shards; rerun "
            "`lvm-data mix` into a new output folder"
        )
    return held_out


def _open(data: str, files: list[str], mix: bool, threads: int) -> Corpus:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        footers = list(pool.map(_footer, files))
    first = None
    groups, file_sources = [], []
    for i, (uri, (meta, rows, columns)) in enumerate(zip(files, footers, strict=True)):
        if not mix and meta.get("schema_version") == mix_shards.SCHEMA_VERSION:
            raise DataError(
                f"{uri}: a shard of a mix; point DATA at the mix output folder (the one holding "
                "manifest.json), and if it has none, rerun `lvm-data mix` to finish it"
            )
        missing = [c for c in [MIX_ID if mix else "id", *READ_COLUMNS[1:]] if c not in columns]
        if missing:
            raise DataError(
                f"{uri}: not a sentence shard (no column {', '.join(missing)}); point DATA at the job's sentences/"
            )
        facts = _vocab_facts(uri, meta)
        if first is None:
            first = (uri, facts)
        elif facts != first[1]:
            raise DataError(
                f"{uri}: tokenizer facts {facts} differ from {first[0]} {first[1]}; "
                "train on shards made with one tokenizer"
            )
        file_sources.append(meta.get("source") or _source_from_path(uri))
        groups.extend(RowGroup(i, g, n) for g, n in enumerate(rows) if n > 0)
    if first is None:
        raise DataError(f"{data}: no sentence files to read")
    fingerprint, codebook, tpi = first[1]
    return Corpus(data, tuple(files), tuple(groups), tuple(file_sources), codebook, tpi, fingerprint, mix)


def _vocab_facts(uri: str, meta: dict[str, str]) -> tuple[str, int, int]:
    for key in ("tokenizer_fingerprint", "codebook_size", "tokens_per_image"):
        if key not in meta:
            raise DataError(
                f"{uri}: Parquet metadata lacks lvm_data.{key}; sentence files written by lvm-data "
                "carry it (lvm_data.shards.schema.file_metadata)"
            )
    return meta["tokenizer_fingerprint"], int(meta["codebook_size"]), int(meta["tokens_per_image"])


def _source_from_path(uri: str) -> str:
    match = re.search(r"source=([^/]+)/", uri)
    return match.group(1) if match else ""


def read_group(corpus: Corpus, group: RowGroup) -> SentenceBatch:
    """The sentences of one row group, checked: codes below the codebook, n_images x tokens_per_image each."""
    uri = corpus.files[group.file]
    fs, path = storage.filesystem(uri)
    with fs.open_input_file(path) as f:
        table = pq.ParquetFile(f).read_row_group(group.index, columns=[corpus.id_column, *READ_COLUMNS[1:]])
    col = table.column("tokens").combine_chunks()
    offsets = col.offsets.to_numpy().astype(np.int64)
    tokens = col.flatten().to_numpy(zero_copy_only=False).astype(np.uint16, copy=False)
    offsets -= offsets[0]
    ids = table.column(corpus.id_column).to_pylist()
    batch = SentenceBatch(ids, table.column("source").to_pylist(), offsets, tokens)
    _check(corpus, uri, group, batch, table.column("n_images").to_numpy())
    return batch


def _check(corpus: Corpus, uri: str, group: RowGroup, batch: SentenceBatch, n_images: np.ndarray) -> None:
    lengths = np.diff(batch.offsets)
    bad = np.flatnonzero(lengths != n_images.astype(np.int64) * corpus.tokens_per_image)
    if len(bad):
        i = int(bad[0])
        raise DataError(
            f"{uri} row group {group.index}: sentence {batch.ids[i]} has {lengths[i]} tokens for "
            f"{n_images[i]} images of {corpus.tokens_per_image}; rewrite this shard"
        )
    if batch.tokens.size and int(batch.tokens.max()) >= corpus.codebook_size:
        row = int(np.searchsorted(batch.offsets, int(np.argmax(batch.tokens >= corpus.codebook_size)), "right")) - 1
        raise DataError(
            f"{uri} row group {group.index}: sentence {batch.ids[row]} holds code "
            f"{int(batch.tokens.max())} >= codebook size {corpus.codebook_size}; rewrite this shard"
        )


def _key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8, key=VAL_SALT).digest(), "little")


def is_validation(keys: list[str], fraction: float, extra: tuple[str, ...] = ()) -> np.ndarray:
    """Held-out mask by hashing each sentence's split key (`SentenceBatch.split_keys`), plus the keys in
    `extra` (see `small_source_holdouts`): the same sentences are held out whatever the seed, the order, or
    where the inputs were read from."""
    if fraction <= 0:
        return np.zeros(len(keys), dtype=bool)
    limit = int(fraction * 2**64)
    wanted = set(extra)
    return np.array([_key_hash(k) < limit or k in wanted for k in keys], dtype=bool)


def small_source_holdouts(corpus: Corpus, fraction: float) -> tuple[str, ...]:
    """One split key for each source of 2 to SMALL_SOURCE_ROWS sentences that the hash holds none of.

    With the default 5 % a source of a few sentences usually gets no validation row, and then no
    validation loss; this holds out its sentence with the smallest hash. Larger sources are left to
    the hash (at 100,000 rows the chance that it holds none out is nil), so only small files are read.
    """
    if fraction <= 0:
        return ()
    rows: Counter[str] = Counter()
    for group in corpus.groups:
        rows[corpus.file_sources[group.file]] += group.rows
    small = {source for source, n in rows.items() if n <= SMALL_SOURCE_ROWS}
    keys_by_source: dict[str, list[str]] = {}
    for group in corpus.groups:
        if corpus.file_sources[group.file] in small:
            batch = read_group(corpus, group)
            for key, source in zip(batch.split_keys(), batch.sources, strict=True):
                keys_by_source.setdefault(source, []).append(key)
    extra = []
    for _source, keys in sorted(keys_by_source.items()):
        if len(keys) >= 2 and not is_validation(keys, fraction).any():
            extra.append(min(keys, key=_key_hash))
    return tuple(sorted(extra))


def manifest_tokenizer(data: str) -> str | None:
    """The tokenizer URI recorded in the job's manifest.json (DATA or the folder above its sentences/)."""
    roots = [data.rstrip("/")]
    if "/sentences" in data:
        roots.append(data.split("/sentences", 1)[0])
    for root in roots:
        uri = layout.join(root, layout.MANIFEST)
        if storage.exists(uri):
            return json.loads(storage.read_bytes(uri)).get("tokenizer", {}).get("uri")
    return None
