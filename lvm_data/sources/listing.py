"""Helpers the sources share: expanding `paths` into files, chunking, and refs for unreadable items."""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Iterable, Sequence

import pyarrow.fs as pafs

from lvm_data import storage
from lvm_data.errors import SourceError  # defined there so that storage can raise one; sources import it from here
from lvm_data.items import ERROR_META, ItemRef
from lvm_data.outcomes import Reason

GLOB_CHARS = re.compile(r"[*?\[]")
MAX_BRACE_NAMES = 1_000_000
SHOW_MISSING = 5  # names of a brace pattern that match nothing, listed in the error


def as_list(paths: str | Sequence[str]) -> list[str]:
    return [paths] if isinstance(paths, str) else list(paths)


def expand_paths(source: str, paths: str | Sequence[str], extensions: Iterable[str] | None) -> list[str]:
    """Sorted, de-duplicated files for `paths` entries (files, folders, globs, brace patterns; local or URIs).

    An entry's braces are expanded first (`expand_braces`: `{00000..09999}`, `{a,b}`), then each name is
    taken on its own: folders are listed recursively and keep files whose extension is in `extensions`
    (case-insensitive; None keeps every file); glob patterns keep every match; a named file is kept as is.
    An entry that matches nothing is an error, and so is each name of a brace pattern that matches nothing
    (a missing shard in a range): a typo should not silently produce an empty or smaller source. The named
    files of one entry are looked up together (storage.file_infos: one listing per folder on remote stores).
    """
    wanted = None if extensions is None else {e.lower().lstrip(".") for e in extensions}
    found: set[str] = set()
    for entry in as_list(paths):
        try:
            names = expand_braces(entry)
        except ValueError as err:
            raise SourceError(f"source {source!r}: input path {entry!r}: {err}; fix the path in the job file") from err
        try:
            matches = {name: _expand_one(name, info, wanted) for name, info in _named(names)}
        except storage.StorageError as err:
            raise SourceError(f"source {source!r}: {err}") from err
        empty = [name for name in names if not matches[name]]
        if empty:
            raise SourceError(_no_match_message(source, entry, names, empty, wanted))
        found.update(uri for uris in matches.values() for uri in uris)
    return sorted(found)


def _named(names: list[str]) -> list[tuple[str, pafs.FileInfo | None]]:
    """Each name with its FileInfo, looked up together; None for glob patterns."""
    plain = [n for n in names if not is_glob(n)]
    infos = dict(zip(plain, storage.file_infos(plain), strict=True))
    return [(name, infos.get(name)) for name in names]


def _no_match_message(source: str, entry: str, names: list[str], empty: list[str], wanted: set[str] | None) -> str:
    extensions = "" if wanted is None else f" with extensions {', '.join(sorted(wanted))}"
    if names == [entry]:
        return f"source {source!r}: input path {entry!r} matches no files{extensions}; check the path in the job file"
    shown = ", ".join(empty[:SHOW_MISSING]) + (f" and {len(empty) - SHOW_MISSING} more" if len(empty) > SHOW_MISSING
                                               else "")
    return (f"source {source!r}: input path {entry!r} stands for {len(names)} names, and {len(empty)} of them "
            f"match no files{extensions}: {shown}; check the range or the files")


def is_glob(entry: str) -> bool:
    """Whether `entry` has glob characters; in an http(s) URL, a '?' starts the query and is not one."""
    if storage.scheme(entry) in ("http", "https"):
        entry = entry.split("?", 1)[0]
    return bool(GLOB_CHARS.search(entry))


def _expand_one(entry: str, info: pafs.FileInfo | None, wanted: set[str] | None) -> list[str]:
    if info is None:
        return storage.glob(entry)
    if info.type == pafs.FileType.File:
        return [_absolute(entry)]
    if info.type == pafs.FileType.Directory:
        return [uri for uri in storage.list_files(_absolute(entry)) if wanted is None or extension(uri) in wanted]
    return []


def _absolute(entry: str) -> str:
    return entry if storage.is_remote(entry) else os.path.abspath(os.path.expanduser(entry))


def expand_braces(pattern: str) -> list[str]:
    """The names a brace pattern stands for, in order (the webdataset / braceexpand convention).

    `{00000..09999}` is a range of whole numbers, both ends included, zero-padded to the wider end when
    either end is written with a leading zero (`{0..10}` is not padded, `{00..10}` is); `{a,b,c}` are
    alternatives (`{x,}` includes the empty one); several braces multiply out left to right:
    `{a,b}/{0..1}` -> a/0, a/1, b/0, b/1. A pattern without braces is returned as the one name.
    Braces always mean expansion, so what is probably a typo raises ValueError rather than naming a file
    with braces in it: an unbalanced or nested brace, a range that counts down or is not of whole
    numbers (`{5..1}`, `{a..e}`), `{x}` with neither `..` nor `,`, or more than MAX_BRACE_NAMES names.
    """
    pieces: list[list[str]] = []
    i = 0
    while (start := pattern.find("{", i)) >= 0:
        end = pattern.find("}", start + 1)
        if "}" in pattern[i:start] or end < 0 or "{" in pattern[start + 1:end]:
            raise ValueError(_brace_problem(pattern, start, end))
        pieces += [[pattern[i:start]], _brace_alternatives(pattern[start + 1:end])]
        i = end + 1
    if "}" in pattern[i:]:
        raise ValueError(f"'}}' at position {pattern.index('}', i)} closes no '{{'")
    pieces.append([pattern[i:]])
    if math.prod(len(p) for p in pieces) > MAX_BRACE_NAMES:
        raise ValueError(f"braces stand for more than {MAX_BRACE_NAMES:,} names; split the entry")
    return ["".join(parts) for parts in itertools.product(*pieces)]


def _brace_problem(pattern: str, start: int, end: int) -> str:
    if end < 0:
        return f"'{{' at position {start} is not closed"
    if "{" in pattern[start + 1:end]:
        return "nested braces are not supported; write the names out as alternatives {a,b,c}"
    return "a '}' closes no '{'"


def _brace_alternatives(inner: str) -> list[str]:
    if (span := re.fullmatch(r"(\d+)\.\.(\d+)", inner)) is not None:
        first, last = span.groups()
        if int(first) > int(last):
            raise ValueError(f"{{{inner}}} counts down; ranges go up: {{{last}..{first}}}")
        if int(last) - int(first) >= MAX_BRACE_NAMES:
            raise ValueError(f"{{{inner}}} stands for more than {MAX_BRACE_NAMES:,} names; split the entry")
        padded = any(len(end) > 1 and end.startswith("0") for end in (first, last))
        width = max(len(first), len(last)) if padded else 0
        return [str(n).zfill(width) for n in range(int(first), int(last) + 1)]
    if "," in inner:
        return inner.split(",")
    if ".." in inner:
        raise ValueError(f"{{{inner}}} is not a range of whole numbers like {{00000..09999}}")
    raise ValueError(f"{{{inner}}} is neither a range {{first..last}} nor alternatives {{a,b}}")


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
