"""64-bit hashes of string columns (sentence ids, ledger keys) for corpus-wide checks.

A billion ids as Python strings do not fit in memory; as uint64 hashes they take 8 bytes each.
Hashes only nominate: a hash seen twice is a *candidate* duplicate, confirmed by re-reading the
strings of just the files involved (`confirm_duplicates`), so a reported duplicate is always real.
Membership (`contains`) is exact for "absent": an id whose hash is not in the set is surely absent.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lvm_data.audit.files import read_column

_CHUNK = 1 << 16  # strings hashed per numpy pass: bounds the temporaries to ~ 64 Ki x length x 24 bytes
_BASE = np.uint64(0x100000001B3)


def hash_strings(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """uint64 per string (null = ""): a polynomial over the UTF-8 bytes, finished with splitmix64."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.type != pa.string():
        values = values.cast(pa.string())
    if values.null_count:
        values = pc.fill_null(values, "")
    out = np.empty(len(values), np.uint64)
    for start in range(0, len(values), _CHUNK):
        out[start : start + _CHUNK] = _hash_chunk(values.slice(start, _CHUNK))
    return out


def _hash_chunk(values: pa.StringArray) -> np.ndarray:
    n = len(values)
    offsets = np.frombuffer(values.buffers()[1], np.int32, count=n + 1, offset=values.offset * 4).astype(np.int64)
    lengths = np.diff(offsets)
    data = values.buffers()[2]
    raw = np.frombuffer(data, np.uint8)[offsets[0] : offsets[-1]] if data is not None else np.empty(0, np.uint8)
    powers = np.full(int(lengths.max(initial=0)) + 1, _BASE, np.uint64)
    powers[0] = 1
    powers = np.cumprod(powers)  # wraps mod 2**64, as intended
    if n and raw.size == n * lengths[0]:  # all the same length (sentence ids): one matrix pass
        hashes = (raw.reshape(n, -1).astype(np.uint64) + 1) @ powers[: lengths[0]]  # integer matmul: wraps too
    else:
        starts = offsets[:-1] - offsets[0]
        position = np.arange(raw.size, dtype=np.int64) - np.repeat(starts, lengths)  # byte index in its string
        hashes = np.zeros(n, np.uint64)
        nonempty = lengths > 0
        if raw.size:
            hashes[nonempty] = np.add.reduceat((raw.astype(np.uint64) + 1) * powers[position], starts[nonempty])
    return _splitmix64(hashes ^ (lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))


def _splitmix64(z: np.ndarray) -> np.ndarray:
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def contains(sorted_set: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Boolean mask: which `values` occur in `sorted_set` (a sorted uint64 array)."""
    found = np.zeros(values.shape, bool)
    if sorted_set.size == 0 or values.size == 0:
        return found
    order = np.argsort(values)  # sorted queries walk the set in order: far fewer cache misses
    index = np.minimum(np.searchsorted(sorted_set, values[order]), sorted_set.size - 1)
    found[order] = sorted_set[index] == values[order]
    return found


def repeated_positions(hashes: np.ndarray) -> np.ndarray:
    """Sorted positions whose hash occurs more than once."""
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    same = ordered[1:] == ordered[:-1]
    mask = np.zeros(ordered.size, bool)
    mask[1:] |= same
    mask[:-1] |= same
    return np.sort(order[mask])


@dataclass
class ColumnHashes:
    """Hashes of one string column over many files, in file order, with a way back to (file, row)."""

    column: str
    uris: list[str]
    arrays: list[np.ndarray]

    def joined(self) -> tuple[np.ndarray, np.ndarray]:
        """(all hashes, start offset of each file)."""
        sizes = np.array([a.size for a in self.arrays], np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if sizes.size else np.zeros(0, np.int64)
        hashes = np.concatenate(self.arrays) if self.arrays else np.zeros(0, np.uint64)
        return hashes, starts

    def strings_at(self, positions: np.ndarray) -> tuple[list[tuple[str, int, str]], int]:
        """(uri, row, value) for global positions, reading the column of just those files; and bytes read."""
        _, starts = self.joined()
        file_index = np.searchsorted(starts, positions, side="right") - 1
        found, bytes_read = [], 0
        for f in np.unique(file_index):
            values, n = read_column(self.uris[f], self.column)
            bytes_read += n
            for row in (positions[file_index == f] - starts[f]).tolist():
                found.append((self.uris[f], row, values[row].as_py() or ""))
        return found, bytes_read


def confirm_duplicates(hashes: ColumnHashes) -> tuple[dict[str, list[tuple[str, int]]], int]:
    """Values that really occur more than once -> their (uri, row) places; and the bytes re-read."""
    joined, _ = hashes.joined()
    candidates = repeated_positions(joined)
    if candidates.size == 0:
        return {}, 0
    places, bytes_read = hashes.strings_at(candidates)
    groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for uri, row, value in places:
        groups[value].append((uri, row))
    return {value: where for value, where in groups.items() if len(where) > 1}, bytes_read
