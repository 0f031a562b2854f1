"""Listings that keep each file's path relative to the root it was found under.

Paired, sequence, frame-folder and multi-view inputs match files across folders by these relative
paths (`scene1/0001` in the image root matches `scene1/0001.png` in the depth root), never by
sorted position. Entries are folders (listed recursively), glob patterns (relative to the folder
before the first wildcard) or single files (relative to their folder); local or gs://.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence

import pyarrow.fs as pafs

from lvm_data import storage
from lvm_data.sentences.base import derive_seed
from lvm_data.sources.listing import GLOB_CHARS, SourceError, as_list, extension

UNIT_SALT = "lvm-data/hash-units"


def absolute(entry: str) -> str:
    return entry if storage.is_remote(entry) else os.path.abspath(os.path.expanduser(entry))


def rooted_files(source: str, field: str, paths: str | Sequence[str],
                 extensions: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """Sorted (uri, relative path) of every file under `paths`, hidden files skipped.

    An entry matching nothing is an error naming the source and the field (a typo should not make
    an empty source). `extensions` (without dots, case-insensitive) filters folder listings.
    """
    wanted = None if extensions is None else {e.lower().lstrip(".") for e in extensions}
    found: dict[str, str] = {}
    for entry in as_list(paths):
        matches = [(uri, rel) for uri, rel in _expand(entry) if not rel.rsplit("/", 1)[-1].startswith(".")
                   and (wanted is None or extension(uri) in wanted)]
        for uri, rel in matches:
            found.setdefault(uri, rel)
        if not matches:
            raise SourceError(f"source {source!r}: input.{field} entry {entry!r} matches no files; "
                              "check the path in the job file")
    return sorted(found.items(), key=lambda item: item[1])


def _expand(entry: str) -> list[tuple[str, str]]:
    if GLOB_CHARS.search(entry):
        base = re.split(r"[*?\[]", entry, maxsplit=1)[0].rsplit("/", 1)[0]
        base = absolute(base) if base else absolute(".")
        return [(uri, _relative(uri, base)) for uri in storage.glob(entry)]
    root = absolute(entry).rstrip("/")
    fs, path = storage.filesystem(root)
    kind = fs.get_file_info(path).type
    if kind == pafs.FileType.Directory:
        return [(uri, _relative(uri, root)) for uri in storage.list_files(root)]
    if kind == pafs.FileType.File:
        return [(root, root.rsplit("/", 1)[-1])]
    return []


def _relative(uri: str, root: str) -> str:
    root = absolute(root).rstrip("/") + "/"
    return uri[len(root):] if uri.startswith(root) else uri.rsplit("/", 1)[-1]


def drop_extension(rel: str) -> str:
    folder, _, name = rel.rpartition("/")
    base = name.rsplit(".", 1)[0] if "." in name else name
    return f"{folder}/{base}" if folder else base


def key_rule(pattern: str | None):
    """Relative path -> key: the pattern's first group (or whole match) searched in it, else the path
    without its extension. A path the pattern does not match gets None (it cannot be paired)."""
    if not pattern:
        return drop_extension
    regex = re.compile(pattern)

    def key(rel: str) -> str | None:
        found = regex.search(rel)
        if not found:
            return None
        return found.group(1) if regex.groups else found.group(0)

    return key


def leaf_folders(files: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Folder (relative path) -> its files' URIs, for folders that directly hold files."""
    out: dict[str, list[str]] = {}
    for uri, rel in files:
        folder = rel.rpartition("/")[0]
        out.setdefault(folder, []).append(uri)
    return out


def hash_units(keys: Sequence[str], shard_size: int) -> dict[str, list[int]]:
    """Unit id -> positions of `keys`: ceil(n / shard_size) units, each key placed by a hash of it.

    Every unit is then a uniform sample of the source (what grouping templates need, see
    lvm_data.sentences.grouping), and membership does not depend on listing order.
    """
    n_units = max(1, -(-len(keys) // shard_size))
    units: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        units.setdefault(f"h{derive_seed(0, UNIT_SALT, key) % n_units:06d}", []).append(i)
    return dict(sorted(units.items()))
