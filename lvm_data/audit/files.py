"""What a job output holds, and reading it with every byte counted.

`list_output(root)` lists OUT once (one recursive listing, sizes included) and sorts each file into
the layout of lvm_data.shards.layout. Parquet files are opened through `CountingFile`, so the audit
knows exactly how many bytes it pulled from disk or gs:// (footers and the column chunks it asked for).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lvm_data import storage
from lvm_data.shards import layout

_PART = re.compile(r"(?P<kind>sentences|ledger)/source=(?P<source>[^/]+)/part-(?P<unit>[^/]+)\.parquet")
_MARKER = re.compile(r"units/source=(?P<source>[^/]+)/(?P<unit>[^/]+)\.json")

T = TypeVar("T")
MAGIC = b"PAR1"
FOOTER_GUESS = 4 << 10  # most footers of our files fit: one read; larger ones take a second

# Errors that mean "this file cannot be read", as opposed to bugs in the audit.
READ_ERRORS = (OSError, pa.ArrowException, json.JSONDecodeError, UnicodeDecodeError)


@dataclass(frozen=True)
class Entry:
    """One file of an output: `rel` is its path below OUT; `source`/`unit` come from the path."""

    root: str
    rel: str
    size: int
    source: str = ""
    unit: str = ""

    @property
    def uri(self) -> str:
        return storage.join(self.root, self.rel)


@dataclass
class Output:
    """The files of one job output (OUT), sorted by role. Keys of the dicts are (source, unit)."""

    root: str
    sentences: dict[tuple[str, str], Entry] = field(default_factory=dict)
    ledger: dict[tuple[str, str], Entry] = field(default_factory=dict)
    markers: dict[tuple[str, str], Entry] = field(default_factory=dict)
    manifest: Entry | None = None
    other: list[Entry] = field(default_factory=list)
    total_bytes: int = 0

    def by_rel(self) -> dict[str, Entry]:
        entries = [*self.sentences.values(), *self.ledger.values(), *self.markers.values(), *self.other]
        return {e.rel: e for e in entries}


class AuditPathError(ValueError):
    """A PATH given to the audit is not a job output."""


def list_output(root: str) -> Output:
    """Every file below `root`, sorted into the layout. Raises AuditPathError when it is not a job output."""
    fs, base = storage.filesystem(root)
    kind = fs.get_file_info(base).type
    if kind == pafs.FileType.NotFound:
        raise AuditPathError(f"{root}: does not exist; give the output folder of a job (OUT)")
    if kind == pafs.FileType.File:
        raise AuditPathError(f"{root}: is a file; give the output folder of a job (OUT), not one of its files")
    infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    out = Output(root=root.rstrip("/"))
    for info in infos:
        if info.type == pafs.FileType.File:
            _classify(out, Entry(out.root, info.path[len(base.rstrip("/")) + 1 :], info.size))
    if not out.sentences and out.manifest is None and not out.ledger:
        raise AuditPathError(
            f"{root}: no sentences/, ledger/ or {layout.MANIFEST} found; "
            "give the output folder of a job (OUT), the one holding manifest.json"
        )
    return out


def _classify(out: Output, entry: Entry) -> None:
    out.total_bytes += entry.size
    part, marker = _PART.fullmatch(entry.rel), _MARKER.fullmatch(entry.rel)
    if part:
        placed = Entry(entry.root, entry.rel, entry.size, part["source"], part["unit"])
        (out.sentences if part["kind"] == "sentences" else out.ledger)[(placed.source, placed.unit)] = placed
    elif marker:
        placed = Entry(entry.root, entry.rel, entry.size, marker["source"], marker["unit"])
        out.markers[(placed.source, placed.unit)] = placed
    elif entry.rel == layout.MANIFEST:
        out.manifest = entry
    else:
        out.other.append(entry)


class CountingFile:
    """A read-only, seekable file object over a pyarrow file that counts the bytes read through it."""

    def __init__(self, native: pa.NativeFile):
        self._native = native
        self.bytes_read = 0

    def read(self, nbytes: int | None = -1) -> bytes:
        data = self._native.read() if nbytes is None or nbytes < 0 else self._native.read(nbytes)
        self.bytes_read += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._native.seek(offset, whence)

    def tell(self) -> int:
        return self._native.tell()

    def size(self) -> int:
        return self._native.size()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self._native.closed

    def close(self) -> None:
        self._native.close()


@contextmanager
def open_counting(uri: str) -> Iterator[CountingFile]:
    """A CountingFile for `uri`; opening reads nothing, so bytes_read starts at 0."""
    fs, path = storage.filesystem(uri)
    counting = CountingFile(fs.open_input_file(path))
    try:
        yield counting
    finally:
        counting.close()


def read_guarded(uri: str, read: Callable[[CountingFile], T]) -> tuple[T | None, int, str]:
    """(read(file), bytes read, "") or, when the file cannot be read, (None, bytes read, the error)."""
    counting = None
    try:
        fs, path = storage.filesystem(uri)
        counting = CountingFile(fs.open_input_file(path))
        return read(counting), counting.bytes_read, ""
    except READ_ERRORS as error:
        return None, counting.bytes_read if counting else 0, f"{type(error).__name__}: {error}"
    finally:
        if counting is not None:
            counting.close()


def read_footer(counting: CountingFile, guess: int = FOOTER_GUESS) -> pq.FileMetaData:
    """The Parquet footer, read with one ranged read of the file's last `guess` bytes (two when the
    footer is longer). pyarrow alone would read the last 64 KiB, several % of a small unit file."""
    size = counting.size()
    counting.seek(max(0, size - guess))
    tail = counting.read(min(size, guess))
    if len(tail) < 12 or tail[-4:] != MAGIC:
        raise pa.ArrowInvalid(f"not a Parquet file: its last bytes are not {MAGIC!r} ({size} bytes)")
    length = int.from_bytes(tail[-8:-4], "little")
    if length + 12 > size:
        raise pa.ArrowInvalid(f"corrupt Parquet footer: {length} bytes claimed in a {size}-byte file")
    if length + 8 > len(tail):
        counting.seek(size - length - 8)
        tail = counting.read(length + 8)
    return pq.read_metadata(pa.BufferReader(MAGIC + tail[-(length + 8) :]))


def parquet(counting: CountingFile) -> pq.ParquetFile:
    """A ParquetFile over a counting file: reads the footer now, column chunks on demand (coalesced)."""
    return pq.ParquetFile(counting, metadata=read_footer(counting), pre_buffer=True)


def read_column(uri: str, column: str) -> tuple[pa.Array, int]:
    """One column of a Parquet file (all row groups) and the bytes read for it."""
    with open_counting(uri) as f:
        values = parquet(f).read(columns=[column]).column(column).combine_chunks()
        return values, f.bytes_read


def read_json(uri: str) -> tuple[object, int]:
    """A JSON document and its size in bytes."""
    data = storage.read_bytes(uri)
    return json.loads(data.decode("utf-8")), len(data)
