"""Helpers the sources share: expanding `paths` into files, chunking, and refs for unreadable items."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence

import pyarrow.fs as pafs

from lvm_data import storage
from lvm_data.items import ERROR_META, ItemRef
from lvm_data.outcomes import Reason

GLOB_CHARS = re.compile(r"[*?\[]")


class SourceError(ValueError):
    """A source that cannot be planned or opened; the message names the source, the path and the fix."""


def as_list(paths: str | Sequence[str]) -> list[str]:
    return [paths] if isinstance(paths, str) else list(paths)


def expand_paths(source: str, paths: str | Sequence[str], extensions: Iterable[str] | None) -> list[str]:
    """Sorted, de-duplicated files for `paths` entries (files, folders, globs; local or gs://).

    Folders are listed recursively and keep files whose extension is in `extensions` (case-insensitive;
    None keeps every file); glob patterns keep every match; a named file is kept as is. An entry that
    matches nothing is an error: a typo should not silently produce an empty source.
    """
    wanted = None if extensions is None else {e.lower().lstrip(".") for e in extensions}
    found: set[str] = set()
    for entry in as_list(paths):
        matches = _expand_one(entry, wanted)
        if not matches:
            raise SourceError(f"source {source!r}: input path {entry!r} matches no files"
                              + ("" if wanted is None else f" with extensions {', '.join(sorted(wanted))}")
                              + "; check the path in the job file")
        found.update(matches)
    return sorted(found)


def _expand_one(entry: str, wanted: set[str] | None) -> list[str]:
    if GLOB_CHARS.search(entry):
        return storage.glob(entry)
    kind = _kind(entry)
    if kind == pafs.FileType.File:
        return [entry if storage.is_remote(entry) else os.path.abspath(os.path.expanduser(entry))]
    if kind == pafs.FileType.Directory:
        return [uri for uri in storage.list_files(_folder(entry)) if wanted is None or extension(uri) in wanted]
    return []


def _folder(entry: str) -> str:
    return entry if storage.is_remote(entry) else os.path.abspath(os.path.expanduser(entry))


def _kind(uri: str) -> pafs.FileType:
    fs, path = storage.filesystem(uri)
    return fs.get_file_info(path).type


def extension(uri: str) -> str:
    name = uri.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def chunks(values: Sequence, size: int) -> list[Sequence]:
    return [values[i:i + size] for i in range(0, len(values), size)]


def unit_ids(names: Sequence[str]) -> list[str]:
    """File-safe unit ids from names (e.g. tar stems) when they are unique, else zero-padded indexes."""
    cleaned = [re.sub(r"[^A-Za-z0-9_.-]", "_", n).lstrip(".") or "unit" for n in names]
    if len(set(cleaned)) == len(cleaned):
        return cleaned
    return [f"{i:06d}" for i in range(len(names))]


def failed_ref(source: str, key: str, unit: str, uri: str, reason: Reason, detail: str) -> ItemRef:
    """An item the source could not read: it still becomes a ledger row (decode raises its reason)."""
    return ItemRef(source=source, key=key, unit=unit, parts={},
                   meta={ERROR_META: {"reason": reason.value, "detail": detail, "uri": uri}})
