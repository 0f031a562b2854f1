"""One file API for local paths and URIs (gs://, s3://, http(s)://, hf://, memory://, ...), built on pyarrow.fs.

gs:// uses pyarrow's GCS filesystem with the default Google credentials; when the variable
STORAGE_EMULATOR_HOST is set (as the google-cloud-storage client honours it) it talks to that
emulator instead. Every other scheme goes through fsspec, wrapped as a pyarrow filesystem, so callers
see one interface: s3:// needs s3fs, http(s):// needs aiohttp, hf:// (Hugging Face repos, e.g.
hf://datasets/org/name/path) uses huggingface_hub; a scheme whose package is missing raises StorageError
naming the package to install. Writes are atomic per file: a temporary name, then a move.

A URI with a scheme is remote (kept as written); anything else is a local path (made absolute).
URIs that list_files and glob return are written like the prefix they were given, so they open again.
Local folders are listed by lvm_data.localfs (not pyarrow): a name that is not UTF-8 comes back
percent-escaped, and read_bytes, exists, size and open_input open such a path again; links are followed
inside the listed folder only, once per target (list_tree and glob_tree also return what was refused).
"""

from __future__ import annotations

import os
import re
import stat
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import fsspec
import pyarrow.fs as pafs

from lvm_data import localfs
from lvm_data.errors import SourceError
from lvm_data.localfs import Refused, Tree  # noqa: F401 - part of this module's API

GS = "gs://"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

# The pip package behind fsspec schemes that need one (fsspec's own messages name it in no fixed form).
PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gcs": "gcsfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "az": "adlfs",
    "adl": "adlfs",
    "http": "aiohttp",
    "https": "aiohttp",
    "hf": "huggingface_hub",
    "sftp": "paramiko",
    "ssh": "paramiko",
}
LIST_FROM = 8  # remote names sharing a folder from which one listing of the folder replaces a request per name
LOOKUP_THREADS = 16


class StorageError(SourceError):
    """A location this environment cannot open: an unknown scheme, or one whose package is not installed.

    A SourceError, because input paths are where a person meets it first, so the CLI prints it as one line.
    """


def scheme(uri: str) -> str:
    """The URI's scheme ('gs', 's3', 'https', ...), '' for a local path."""
    match = _SCHEME.match(uri)
    return match.group(1).lower() if match else ""


def is_remote(uri: str) -> bool:
    """True for a URI with a scheme (kept as written); False for a local path (callers make it absolute)."""
    return bool(scheme(uri))


@lru_cache(maxsize=4)
def _gcs(emulator: str | None) -> pafs.FileSystem:
    if emulator:
        parsed = urlparse(emulator if "://" in emulator else f"http://{emulator}")
        return pafs.GcsFileSystem(anonymous=True, scheme=parsed.scheme or "http", endpoint_override=parsed.netloc)
    return pafs.GcsFileSystem()


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path within it) for a local path, gs://bucket/key or any URI fsspec can open."""
    if uri.startswith(GS):
        return _gcs(os.environ.get("STORAGE_EMULATOR_HOST")), uri[len(GS) :]
    if not is_remote(uri):
        return pafs.LocalFileSystem(), str(Path(uri).expanduser().absolute())
    protocol = scheme(uri)
    try:
        fsspec.get_filesystem_class(protocol)
    except ValueError as err:  # fsspec: "Protocol not known: ..."
        raise StorageError(
            f"{uri}: unknown location scheme {protocol}://; use a local path, gs://, s3://, "
            "http(s)://, hf:// or another scheme fsspec knows"
        ) from err
    except ImportError as err:
        raise StorageError(_missing_package(uri, protocol, err)) from err
    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except ImportError as err:  # a package the filesystem imports only when it starts
        raise StorageError(_missing_package(uri, protocol, err)) from err
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def _missing_package(uri: str, protocol: str, err: ImportError) -> str:
    package = PACKAGES.get(protocol)
    if package is None:
        return f"{uri}: reading {protocol}:// needs a package that is not installed ({err})"
    return f"{uri}: reading {protocol}:// needs the {package} package; pip install {package}"


def _uri_head(uri: str, path: str) -> str:
    """What to put before a path of `uri`'s filesystem to write it as a URI like `uri` (gs://b/x, b/x -> gs://)."""
    if not is_remote(uri):
        return ""
    trimmed, path = uri.rstrip("/"), path.rstrip("/")
    if path and trimmed.endswith(path):
        return trimmed[: len(trimmed) - len(path)]
    return "" if is_remote(path) else f"{scheme(uri)}://"


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *[p.strip("/") for p in parts]])


def _escaped_local(uri: str) -> bytes | None:
    """The OS path of a local path that only opens percent-decoded (a non-UTF-8 name, see localfs), else None."""
    if is_remote(uri):
        return None
    path = localfs.os_path(os.path.expanduser(uri))
    return path if isinstance(path, bytes) else None


def read_bytes(uri: str) -> bytes:
    if (local := _escaped_local(uri)) is not None:
        with open(local, "rb") as f:
            return f.read()
    fs, path = filesystem(uri)
    with fs.open_input_stream(path) as f:
        return f.read()


def open_input(uri: str):
    """A seekable binary file to read (a context manager), local or remote; escaped local names open too."""
    if (local := _escaped_local(uri)) is not None:
        return open(local, "rb")
    fs, path = filesystem(uri)
    return fs.open_input_file(path)


def open_input_stream(uri: str):
    """A binary stream to read once from the start (a context manager); escaped local names open too."""
    if (local := _escaped_local(uri)) is not None:
        return open(local, "rb")
    fs, path = filesystem(uri)
    return fs.open_input_stream(path)


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
    if (local := _escaped_local(uri)) is not None:
        return os.path.exists(local)
    fs, path = filesystem(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def size(uri: str) -> int:
    if (local := _escaped_local(uri)) is not None:
        return os.stat(local).st_size
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
    """Files under a folder/prefix, sorted, as URIs of the same kind as `prefix`. Missing -> [].

    Locally, recursive listings follow links as localfs.walk does and leave out what it refuses; a listing of
    one folder keeps links to files wherever they point."""
    if not is_remote(prefix):
        root = filesystem(prefix)[1]
        if not recursive:
            return localfs.list_folder(root) if os.path.isdir(localfs.os_path(root)) else []
        return list_tree(root).files
    fs, path = filesystem(prefix)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return []
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=recursive, allow_not_found=True))
    head = _uri_head(prefix, path)
    return sorted(head + i.path for i in infos if i.type == pafs.FileType.File)


def file_infos(uris: Sequence[str]) -> list[pafs.FileInfo]:
    """FileInfo (path = the URI as given, type File, Directory or NotFound, size, mtime) for each URI, in order.

    Remote URIs are looked up without a request each where possible: LIST_FROM or more in one folder are
    found with one listing of that folder (as a brace range of shards is). What a listing does not show, or
    cannot (a plain HTTP server lists nothing, or not everything), is asked one by one, on a few threads.
    """
    found: dict[str, pafs.FileInfo] = {}
    folders: dict[str, list[str]] = {}
    for uri in uris:
        if is_remote(uri):
            folders.setdefault(uri.rstrip("/").rsplit("/", 1)[0], []).append(uri)
    for folder, names in folders.items():
        if len(names) >= LIST_FROM:
            listed = _listing(folder)
            hits = {u: listed[u.rstrip("/")] for u in names if u.rstrip("/") in listed}
            found.update({u: pafs.FileInfo(u, i.type, size=i.size, mtime_ns=i.mtime_ns) for u, i in hits.items()})
    rest = [u for u in dict.fromkeys(uris) if u not in found]
    if any(is_remote(u) for u in rest):
        with ThreadPoolExecutor(min(LOOKUP_THREADS, len(rest))) as pool:
            found.update(zip(rest, pool.map(_info, rest), strict=True))
    else:
        found.update((u, _info(u)) for u in rest)
    return [found[u] for u in uris]


def _info(uri: str) -> pafs.FileInfo:
    if (local := _escaped_local(uri)) is not None:  # a percent-escaped name (localfs): pyarrow cannot open it
        try:
            st = os.stat(local)
        except OSError:
            return pafs.FileInfo(uri, pafs.FileType.NotFound)
        kind = pafs.FileType.Directory if stat.S_ISDIR(st.st_mode) else pafs.FileType.File
        return pafs.FileInfo(uri, kind, size=st.st_size, mtime_ns=st.st_mtime_ns)
    fs, path = filesystem(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File and uri.endswith("/") and scheme(uri) in ("http", "https"):
        return pafs.FileInfo(uri, pafs.FileType.Directory)  # an index page: fsspec lists its links as files
    return pafs.FileInfo(uri, info.type, size=info.size, mtime_ns=info.mtime_ns)


def _listing(folder: str) -> dict[str, pafs.FileInfo]:
    """{URI: FileInfo} of the entries right inside `folder` ({} where it cannot be listed), leaving out files
    whose size the listing does not give (an HTTP index page): those are asked one by one."""
    fs, path = filesystem(folder)
    try:
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=False, allow_not_found=True))
    except OSError:  # not a folder, or a server that lists nothing: the names are then asked one by one
        return {}
    head = _uri_head(folder, path)
    return {
        head + i.path.rstrip("/"): i
        for i in infos
        if i.type == pafs.FileType.Directory or (i.type == pafs.FileType.File and i.size is not None)
    }


def list_tree(prefix: str, links: str = "inside") -> Tree:
    """list_files(prefix) with what a local walk refused beside it (links outside the folder, broken links,
    special files, folders it cannot list), each a Refused to write as a ledger row. links: localfs.LINKS."""
    if is_remote(prefix):
        return Tree(list_files(prefix))
    tree = localfs.list_tree(filesystem(prefix)[1], links)
    return Tree(sorted(tree.files), tree.refused)


def glob_tree(pattern: str, links: str = "inside") -> Tree:
    """glob(pattern) with what a local walk refused beside it (see list_tree)."""
    if is_remote(pattern):
        return Tree(glob(pattern))
    tree = localfs.glob_tree(pattern, links)
    return Tree(sorted(tree.files), tree.refused)


def glob(pattern: str) -> list[str]:
    """Sorted matches of a glob pattern (with ** for any depth), local or remote."""
    if not is_remote(pattern):
        return glob_tree(pattern).files
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
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            out.append("[" + pattern[i + 1 : end].replace("!", "^", 1) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))
