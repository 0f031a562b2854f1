"""Listings that keep each file's path relative to the root it was found under.

Paired, sequence, frame-folder and multi-view inputs match files across folders by these relative
paths (`scene1/0001` in the image root matches `scene1/0001.png` in the depth root), never by
sorted position. Entries are folders (listed recursively), glob patterns (relative to the folder
before the first wildcard) or single files (relative to their folder); local or gs://.
Local folders are walked by lvm_data.localfs (names that are not UTF-8 percent-escaped, links followed
inside each root once per target); what a walk refuses comes back from `rooted_inputs` beside the files,
each with its key relative to its root. Items of these sources are keyed by these relative paths (or by a
match key, an object name), never by URIs: the rule of lvm_data.sources.listing, braces taken literally.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Sequence

import pyarrow.fs as pafs

from lvm_data import storage
from lvm_data.determinism import derive_seed
from lvm_data.localfs import Refused
from lvm_data.sources.listing import GLOB_CHARS, RefusedEntry, SourceError, as_list, entry_root, extension, relative_key

UNIT_SALT = "lvm-data/hash-units"


def absolute(entry: str) -> str:
    return entry if storage.is_remote(entry) else os.path.abspath(os.path.expanduser(entry))


def rooted_files(
    source: str, field: str, paths: str | Sequence[str], extensions: Iterable[str] | None = None, links: str = "inside"
) -> list[tuple[str, str]]:
    """Sorted (uri, relative path) of every file under `paths`, hidden files skipped.

    An entry matching nothing is an error naming the source and the field (a typo should not make
    an empty source). `extensions` (without dots, case-insensitive) filters folder listings.
    """
    return rooted_inputs(source, field, paths, extensions, links)[0]


def rooted_inputs(
    source: str, field: str, paths: str | Sequence[str], extensions: Iterable[str] | None = None, links: str = "inside"
) -> tuple[list[tuple[str, str]], list[Refused]]:
    """`rooted_files` and, beside them, what the walks refused (sorted by URI; refused files filtered by name
    like files, refused folders kept), each of which still needs an item. `links`: lvm_data.localfs.LINKS."""
    wanted = None if extensions is None else {e.lower().lstrip(".") for e in extensions}
    found: dict[str, str] = {}
    refused: dict[str, Refused] = {}
    for entry in as_list(paths):
        files, refusals = _expand(entry, links)
        matches = [(uri, rel) for uri, rel in files if _wanted(uri, wanted)]
        for uri, rel in matches:
            found.setdefault(uri, rel)
        kept = [r for r in refusals if r.folder or _wanted(r.uri, wanted)]
        refused.update((r.uri, r) for r in kept)
        if not matches and not kept:
            raise SourceError(
                f"source {source!r}: input.{field} entry {entry!r} matches no files; check the path in the job file"
            )
    return (
        sorted(found.items(), key=lambda item: item[1]),
        [r for uri, r in sorted(refused.items()) if uri not in found],
    )


def unheld(refused: list[Refused], folders: Iterable[str] = ()) -> list[RefusedEntry]:
    """The refused entries that need their own item: all but refused files right inside one of `folders`
    (item folders of frame-folder sources, whose own listing decides their frames when decoded)."""
    held = set(folders)
    return [RefusedEntry.of(r) for r in refused if r.uri not in held and r.uri.rsplit("/", 1)[0] not in held]


def _wanted(uri: str, wanted: set[str] | None) -> bool:
    return not uri.rsplit("/", 1)[-1].startswith(".") and (wanted is None or extension(uri) in wanted)


def _expand(entry: str, links: str) -> tuple[list[tuple[str, str]], list[Refused]]:
    """Files of one entry as (uri, relative path), and what its walk refused."""
    if GLOB_CHARS.search(entry):  # relative to the folder before the first wildcard (a relative glob's matches are
        base = entry_root(entry, braces=False)  # relative: made absolute, like the folder listings' are)
        tree = storage.glob_tree(entry, links)
        return (
            [(absolute(uri), relative_key(uri, base)) for uri in tree.files],
            [_keyed(r, base) for r in tree.refused],
        )
    root = absolute(entry).rstrip("/")
    kind = storage.file_infos([root])[0].type
    if kind == pafs.FileType.Directory:
        tree = storage.list_tree(root, links)
        return [(uri, relative_key(uri, root)) for uri in tree.files], [_keyed(r, root) for r in tree.refused]
    if kind == pafs.FileType.File:
        return [(root, root.rsplit("/", 1)[-1])], []
    return [], []


def _keyed(refused: Refused, root: str) -> Refused:
    """A refused entry with an absolute URI and its key below `root` (lvm_data.sources.listing)."""
    return dataclasses.replace(refused, uri=absolute(refused.uri), key=relative_key(refused.uri, root))


def folder_key(rel: str) -> str:
    """The key of the folder that holds the file at relative path `rel`: its relative path, "." for the root."""
    return rel.rpartition("/")[0] or "."


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
