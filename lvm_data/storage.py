"""One file API for local paths and gs:// URIs, built on pyarrow.fs.

gs:// uses pyarrow's GCS filesystem with the default Google credentials; when the variable
STORAGE_EMULATOR_HOST is set (as the google-cloud-storage client honours it) it talks to that
emulator instead. Writes are atomic per file: a temporary name, then a move.
"""

from __future__ import annotations

import glob as _glob
import os
import re
import uuid
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

GS = "gs://"


def is_remote(uri: str) -> bool:
    return uri.startswith(GS)


@lru_cache(maxsize=4)
def _gcs(emulator: str | None) -> pafs.FileSystem:
    if emulator:
        parsed = urlparse(emulator if "://" in emulator else f"http://{emulator}")
        return pafs.GcsFileSystem(anonymous=True, scheme=parsed.scheme or "http", endpoint_override=parsed.netloc)
    return pafs.GcsFileSystem()


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path within it) for a local path or gs://bucket/key."""
    if is_remote(uri):
        return _gcs(os.environ.get("STORAGE_EMULATOR_HOST")), uri[len(GS):]
    if "://" in uri:
        raise ValueError(f"{uri}: unsupported location; use a local path or gs://bucket/path")
    return pafs.LocalFileSystem(), str(Path(uri).expanduser().absolute())


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *[p.strip("/") for p in parts]])


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    with fs.open_input_stream(path) as f:
        return f.read()


def write_bytes(uri: str, data: bytes) -> None:
    """Write atomically: readers see the old file or the whole new one, never a partial file."""
    fs, path = filesystem(uri)
    parent = path.rsplit("/", 1)[0]
    fs.create_dir(parent, recursive=True)
    tmp = f"{parent}/.tmp-{uuid.uuid4().hex}-{path.rsplit('/', 1)[1]}"
    with fs.open_output_stream(tmp) as f:
        f.write(data)
    fs.move(tmp, path)


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def size(uri: str) -> int:
    fs, path = filesystem(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(uri)
    return info.size


def delete(uri: str) -> None:
    fs, path = filesystem(uri)
    if fs.get_file_info(path).type == pafs.FileType.File:
        fs.delete_file(path)


def list_files(prefix: str, recursive: bool = True) -> list[str]:
    """Files under a folder/prefix, sorted, as URIs of the same kind as `prefix`. Missing -> []."""
    fs, path = filesystem(prefix)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return []
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=recursive, allow_not_found=True))
    scheme = GS if is_remote(prefix) else ""
    return sorted(scheme + i.path for i in infos if i.type == pafs.FileType.File)


def glob(pattern: str) -> list[str]:
    """Sorted matches of a glob pattern (with ** for any depth), local or gs://."""
    if not is_remote(pattern):
        return sorted(p for p in _glob.glob(os.path.expanduser(pattern), recursive=True) if os.path.isfile(p))
    if not re.search(r"[*?\[]", pattern):
        return [pattern] if exists(pattern) else []
    base = re.split(r"[*?\[]", pattern, maxsplit=1)[0].rsplit("/", 1)[0]
    regex = _glob_regex(pattern)
    return [uri for uri in list_files(base) if regex.fullmatch(uri)]


def _glob_regex(pattern: str) -> re.Pattern:
    """`**/` spans any number of folders, `*` and `?` stay within one path segment."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            out.append("[" + pattern[i + 1:end].replace("!", "^", 1) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))
