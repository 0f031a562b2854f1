"""Helpers the sources share: expanding `paths` into files, chunking, and refs for unreadable items.

Local folders and globs are walked by lvm_data.localfs: names that are not UTF-8 come back percent-escaped
(they open again through lvm_data.storage), and a link is followed inside its entry's root only, once per
target; links outside it (unless `follow_links: outside`), broken links, special files and folders that
cannot be listed come back as refused entries, which a source turns into failed items (`refused_ref`).

Item keys are relative to where the files are found, so the same files give the same keys (and so the same
seeds and sentence ids) in a local folder, on gs:// or behind http://. The rule (`entry_root`, `relative_key`):
a file's key is its path, '/'-separated, below the root of the `paths` entry that found it, where the root of

- a folder entry (no braces, no wildcards) is that folder: `data/photos` -> `a/1.jpg` for data/photos/a/1.jpg;
- any other entry (a glob, a brace pattern, a named file) is the folder that holds the entry's text up to its
  first `{`, `*`, `?` or `[` (the whole text when it has none): `data/more/*.png` -> `x.png`,
  `data/*/img/*.png` -> `a/img/x.png`, `laion/{00000..00009}.tar` -> `00000.tar`, `data/{a,b}/*.png` ->
  `a/x.png`, `data/x.jpg` -> `x.jpg` (a named file's key is its file name).

A file several entries find is read once, under the key of the first entry (job-file order) that finds it; two
different files with one key (`a/1.jpg` and `b/1.jpg` named by the entries `a` and `b`) stop the planning with a
message: name such folders by one entry (`{a,b}` or their parent folder) so their keys differ. Refused entries
are keyed by the same rule. Local paths are made absolute first (a relative glob's matches too), so an entry and
the files it finds compare alike. Units of the file sources are cut from the files in key order.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import pyarrow.fs as pafs

from lvm_data import storage
from lvm_data.errors import SourceError  # defined there so that storage can raise one; sources import it from here
from lvm_data.items import ERROR_META, ItemRef
from lvm_data.localfs import LINKS, Refused, Tree, safe_text
from lvm_data.outcomes import Reason

GLOB_CHARS = re.compile(r"[*?\[]")
MAX_BRACE_NAMES = 1_000_000
SHOW_MISSING = 5  # names of a brace pattern that match nothing, listed in the error


def as_list(paths: str | Sequence[str]) -> list[str]:
    return [paths] if isinstance(paths, str) else list(paths)


class RefusedEntry(NamedTuple):
    """A refused entry as a unit's spec carries it (small, picklable, JSON-able): `refused_ref` makes its item."""

    uri: str
    reason: str
    detail: str
    key: str = ""  # its item key (module docstring); empty in specs made before keys were relative: the URI

    @classmethod
    def of(cls, refused: Refused) -> RefusedEntry:
        return cls(refused.uri, refused.reason.value, refused.detail, refused.key)


class FileEntry(NamedTuple):
    """A file as a unit's spec carries it: where it is (`uri`) and its item key (module docstring)."""

    uri: str
    key: str


@dataclass
class Inputs:
    """What `paths` stand for: files to read, and refused entries (each still an item), both sorted by URI; `keys`
    maps the URI of each file and refused entry to its item key."""

    files: list[str] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)

    def entries(self) -> list[FileEntry | RefusedEntry]:
        """Files (as FileEntry) and refused entries (as RefusedEntry) in one key order, as units carry them."""
        files = [FileEntry(uri, self.keys.get(uri, uri)) for uri in self.files]
        return sorted([*files, *map(RefusedEntry.of, self.refused)], key=entry_key)


def entry_uri(entry: str | FileEntry | RefusedEntry) -> str:
    return entry if isinstance(entry, str) else entry.uri


def entry_key(entry: str | FileEntry | RefusedEntry) -> str:
    """An entry's item key (its URI for a plain URI, as specs before relative keys held them)."""
    return entry if isinstance(entry, str) else (entry.key or entry.uri)


def expand_paths(source: str, paths: str | Sequence[str], extensions: Iterable[str] | None) -> list[str]:
    """The files of `expand_inputs` (refused entries left out)."""
    return expand_inputs(source, paths, extensions).files


def follow_links(source: str, options: dict) -> str:
    """The input block's `follow_links` (inside | outside), checked."""
    value = options.get("follow_links", "inside")
    if value not in LINKS:
        raise SourceError(
            f"source {source!r}: input.follow_links is {value!r}; use inside (links are followed "
            "only within each input folder) or outside (also links that leave it)"
        )
    return value


def expand_inputs(
    source: str, paths: str | Sequence[str], extensions: Iterable[str] | None, links: str = "inside"
) -> Inputs:
    """Sorted, de-duplicated files for `paths` entries (files, folders, globs, brace patterns; local or URIs).

    An entry's braces are expanded first (`expand_braces`: `{00000..09999}`, `{a,b}`), then each name is
    taken on its own: folders are listed recursively and keep files whose extension is in `extensions`
    (case-insensitive; None keeps every file); glob patterns keep every match; a named file is kept as is.
    An entry that matches nothing is an error, and so is each name of a brace pattern that matches nothing
    (a missing shard in a range): a typo should not silently produce an empty or smaller source. The named
    files of one entry are looked up together (storage.file_infos: one listing per folder on remote stores).
    A folder or glob is the root its links are judged by (`links`: see lvm_data.localfs); what it refuses is
    returned beside the files (a refused file filtered by extension like files; a refused folder always).
    Each file and refused entry gets its item key (module docstring: relative to its entry's root); two of them
    with one key raise SourceError.
    """
    wanted = None if extensions is None else {e.lower().lstrip(".") for e in extensions}
    found: dict[str, str] = {}  # uri -> key (the first entry's that finds it)
    refused: dict[str, Refused] = {}
    for entry in as_list(paths):
        try:
            names = expand_braces(entry)
        except ValueError as err:
            raise SourceError(f"source {source!r}: input path {entry!r}: {err}; fix the path in the job file") from err
        try:
            named = _named(names)
            matches = {name: _expand_one(name, info, wanted, links) for name, info in named}
        except storage.StorageError as err:
            raise SourceError(f"source {source!r}: {err}") from err
        empty = [name for name in names if not matches[name].files and not matches[name].refused]
        if empty:
            raise SourceError(_no_match_message(source, entry, names, empty, wanted))
        for name, info in named:
            root = entry_root(
                entry, folder=names == [entry] and info is not None and info.type == pafs.FileType.Directory
            )
            for uri in matches[name].files:
                found.setdefault(uri, relative_key(uri, root))
            for r in matches[name].refused:
                refused.setdefault(r.uri, dataclasses.replace(r, key=relative_key(r.uri, root)))
    refused = {uri: r for uri, r in sorted(refused.items()) if uri not in found}
    keys = {**found, **{uri: r.key for uri, r in refused.items()}}
    check_unique_keys(source, keys)
    return Inputs(sorted(found), list(refused.values()), keys)


def entry_root(entry: str, folder: bool = False, braces: bool = True) -> str:
    """The folder the keys of a `paths` entry are relative to (module docstring): the entry itself when it is a
    `folder`, else the folder that holds its text up to the first wildcard (or brace, with `braces`; the folder
    sources of lvm_data.sources.trees take braces literally), which for a named file is the folder it is in."""
    if folder:
        return entry.rstrip("/") or entry
    text = entry.split("?", 1)[0] if storage.scheme(entry) in ("http", "https") else entry  # '?' starts a query
    special = re.search(r"[{*?\[]" if braces else r"[*?\[]", text)
    head = text if special is None else text[: special.start()]
    if "/" not in head:
        return "."
    return head.rsplit("/", 1)[0] or "/"


def relative_key(uri: str, root: str) -> str:
    """`uri`'s path below the folder `root`, '/'-separated (local paths compared absolute); the file name when it
    is not below it."""
    path, folder = _absolute(uri), _absolute(root).rstrip("/") + "/"
    if path.startswith(folder) and len(path) > len(folder):
        return path[len(folder) :]
    return path.rstrip("/").rsplit("/", 1)[-1]


def unique_key(key: str, taken: set[str]) -> str:
    """`key`, or when it is taken the first free `key@N` (N = 1, 2, ...); the result is added to `taken`."""
    free = key if key not in taken else next(f"{key}@{n}" for n in itertools.count(1) if f"{key}@{n}" not in taken)
    taken.add(free)
    return free


def check_unique_keys(source: str, keys: dict[str, str]) -> None:
    """Raise SourceError when two URIs have one item key: two inputs must never share a ledger row."""
    owner: dict[str, str] = {}
    for uri, key in sorted(keys.items()):
        other = owner.setdefault(key, uri)
        if other != uri:
            raise SourceError(
                f"source {source!r}: {other} and {uri} both have the item key {key!r} (a key is the "
                'path below the root of the paths entry that finds the file, see README "Item keys"); '
                "name such folders by one entry ({a,b}, or their parent folder) so that their keys "
                "differ"
            )


def _named(names: list[str]) -> list[tuple[str, pafs.FileInfo | None]]:
    """Each name with its FileInfo, looked up together; None for glob patterns."""
    plain = [n for n in names if not is_glob(n)]
    infos = dict(zip(plain, storage.file_infos(plain), strict=True))
    return [(name, infos.get(name)) for name in names]


def _no_match_message(source: str, entry: str, names: list[str], empty: list[str], wanted: set[str] | None) -> str:
    extensions = "" if wanted is None else f" with extensions {', '.join(sorted(wanted))}"
    if names == [entry]:
        return f"source {source!r}: input path {entry!r} matches no files{extensions}; check the path in the job file"
    shown = ", ".join(empty[:SHOW_MISSING]) + (
        f" and {len(empty) - SHOW_MISSING} more" if len(empty) > SHOW_MISSING else ""
    )
    return (
        f"source {source!r}: input path {entry!r} stands for {len(names)} names, and {len(empty)} of them "
        f"match no files{extensions}: {shown}; check the range or the files"
    )


def is_glob(entry: str) -> bool:
    """Whether `entry` has glob characters; in an http(s) URL, a '?' starts the query and is not one."""
    if storage.scheme(entry) in ("http", "https"):
        entry = entry.split("?", 1)[0]
    return bool(GLOB_CHARS.search(entry))


def _expand_one(entry: str, info: pafs.FileInfo | None, wanted: set[str] | None, links: str) -> Tree:
    if info is None:  # a glob: its matches are written like it, so a relative pattern's are made absolute
        tree = storage.glob_tree(entry, links)
        return Tree(
            [_absolute(uri) for uri in tree.files], [dataclasses.replace(r, uri=_absolute(r.uri)) for r in tree.refused]
        )
    if info.type == pafs.FileType.File:
        return Tree([_absolute(entry)])
    if info.type == pafs.FileType.Directory:
        tree = storage.list_tree(_absolute(entry), links)
        return Tree(
            [uri for uri in tree.files if wanted is None or extension(uri) in wanted],
            [r for r in tree.refused if r.folder or wanted is None or extension(r.uri) in wanted],
        )
    return Tree()


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
        if "}" in pattern[i:start] or end < 0 or "{" in pattern[start + 1 : end]:
            raise ValueError(_brace_problem(pattern, start, end))
        pieces += [[pattern[i:start]], _brace_alternatives(pattern[start + 1 : end])]
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
    if "{" in pattern[start + 1 : end]:
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
    return [values[i : i + size] for i in range(0, len(values), size)]


def unit_ids(names: Sequence[str]) -> list[str]:
    """File-safe unit ids from names (e.g. tar stems) when they are unique, else zero-padded indexes."""
    cleaned = [re.sub(r"[^A-Za-z0-9_.-]", "_", n).lstrip(".") or "unit" for n in names]
    if len(set(cleaned)) == len(cleaned):
        return cleaned
    return [f"{i:06d}" for i in range(len(names))]


def refused_ref(source: str, unit: str, entry: RefusedEntry) -> ItemRef:
    """The failed item of a refused entry, under its key (its URI in a spec from before keys were relative)."""
    return failed_ref(source, entry_key(entry), unit, entry.uri, Reason(entry.reason), entry.detail)


def failed_ref(source: str, key: str, unit: str, uri: str, reason: Reason, detail: str) -> ItemRef:
    """An item the source could not read: it still becomes a ledger row (decode raises its reason). Surrogates
    in the key, URI or detail (an undecodable name in an error message) are escaped (localfs.safe_text)."""
    return ItemRef(
        source=source,
        key=safe_text(key),
        unit=unit,
        parts={},
        meta={ERROR_META: {"reason": reason.value, "detail": safe_text(detail), "uri": safe_text(uri)}},
    )
