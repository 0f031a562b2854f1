"""Local folders as lvm-data lists them: names as bytes-safe text, links followed once, nothing unaccounted.

Names. A file name that is valid UTF-8 is written as it is. A name that is not (a Linux name is any bytes)
is written with each byte that is not part of a valid UTF-8 sequence as `%XX` (two upper-case hex digits)
and each `%` of that name as `%25`; everything else stays: b"bad\\xff.png" -> "bad%FF.png". Should the
folder also hold a file literally named that way, every byte before the extension is escaped, in
lower-case hex ("%62%61%64%ff.png"); should that be a real name too (or equal the first form), "%00" goes
before the extension until the text is no sibling's name (no name holds a NUL, so that one item fails
read_error rather than reading another file).
Keys, URIs and ledger rows carry that text, never surrogates. It opens again with `os_path`: a path that
does not exist as written is resolved folder by folder, a segment that does not exist as written being
percent-decoded back to its bytes.

Links. A walk from a root lists every regular file under it once. A link whose target lies inside the
root adds nothing (its target is listed under its own path, the one without links), so a link to `.`
or `..` cannot loop and a linked file is not read twice. A link pointing outside the root is refused
(`link_outside_root`) unless links="outside": then it is followed, each target folder walked once and
each target file listed once, under the first link path (sorted order) that reaches it. A link that
points nowhere, at itself, or at something that is not a file or folder is refused (`broken_link`);
so are FIFOs, sockets and devices (`read_error`), and a folder that cannot be listed (`read_error`).
A refused folder (a link to one outside, one that cannot be listed) is marked so: name filters keep it.
Refused entries come back beside the files so that each can become a ledger row.
"""

from __future__ import annotations

import errno
import fnmatch
import heapq
import os
import stat
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from lvm_data.outcomes import Reason

LINKS = ("inside", "outside")


@dataclass(frozen=True)
class Refused:
    """An entry of a listing that is not a file to read: it still needs its ledger row."""

    uri: str
    reason: Reason
    detail: str
    folder: bool = False  # a folder that could not be listed (name filters do not apply to it)
    key: str = ""  # its item key (lvm_data.sources.listing: relative to its paths entry), set by the source's listing


@dataclass
class Tree:
    """What a walk found: files to read and refused entries, each sorted by URI."""

    files: list[str] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


def name_text(name: bytes, taken: frozenset[str] | set[str] = frozenset()) -> str:
    """A file name as text (module docstring): UTF-8 as is, else percent-escaped; `taken` are the literal
    names beside it, which the escaped form must not equal."""
    try:
        return name.decode("utf-8")
    except UnicodeDecodeError:
        pass
    escaped = _escape(name, "%{:02X}")
    if escaped not in taken:
        return escaped
    stem, dot, ext = name.rpartition(b".") if name.rfind(b".") > 0 else (name, b"", b"")
    stem_text, tail = "".join(f"%{b:02x}" for b in stem), _escape(dot + ext, "%{:02x}")
    while stem_text + tail in taken or stem_text + tail == escaped:
        stem_text += "%00"
    return stem_text + tail


def safe_text(text: str) -> str:
    """`text` with any surrogates (a name decoded with surrogateescape, in a path or an error message) written
    as `name_text` writes the bytes they stand for; text without them is returned as it is."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return name_text(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a surrogate that stands for no byte (U+D800..U+DC7F)
        return name_text(text.encode("utf-8", "surrogatepass"))


def _escape(name: bytes, form: str) -> str:
    """`%` as %25 and each byte outside valid UTF-8 as `form` of it; the rest as decoded."""
    return "".join(
        "%25" if ch == "%" else form.format(ord(ch) - 0xDC00) if "\udc80" <= ch <= "\udcff" else ch
        for ch in name.decode("utf-8", "surrogateescape")
    )


def os_path(path: str) -> str | bytes:
    """The path to open for a local path that a listing wrote: `path` itself when it exists (or has no '%'),
    else bytes with each segment that does not exist as written percent-decoded."""
    if "%" not in path or _lexists(path):
        return path
    segments = path.split("/")
    current = os.fsencode(segments[0])
    for segment in segments[1:]:
        literal = current + b"/" + os.fsencode(segment)
        if "%" in segment and not _lexists(literal):
            decoded = current + b"/" + unquote_to_bytes(segment)
            if _lexists(decoded):
                literal = decoded
        current = literal
    return current if current != os.fsencode(path) else path


def _lexists(path: str | bytes) -> bool:
    try:
        return os.path.lexists(path)
    except ValueError:  # an embedded NUL (from %00): no such name
        return False


def _within(path: bytes, root: bytes) -> bool:
    return path == root or path.startswith(root.rstrip(b"/") + b"/")


def _special(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


class _Walk:
    """One walk from a root (see the module docstring); entries are (relative text path, ...)."""

    def __init__(self, root: bytes, links: str, max_depth: int | None = None):
        if links not in LINKS:
            raise ValueError(f"follow_links is {links!r}; use one of {', '.join(LINKS)}")
        self.root, self.links, self.max_depth = os.path.realpath(root), links, max_depth
        self.files: dict[bytes, str] = {}  # real path -> relative path it is listed under
        self.refused: list[tuple[str, Reason, str, bool]] = []
        self.folders: set[tuple[int, int]] = set()  # (device, inode) of folders walked
        self.pending: list[tuple[str, bytes]] = []  # links: (relative path, path to open)

    def run(self) -> None:
        self._folder(self.root, self.root, "")
        while self.pending:
            self._link(*heapq.heappop(self.pending))

    def _folder(self, path: bytes, real: bytes, rel: str) -> None:
        if self.max_depth is not None and rel and rel.count("/") + 1 >= self.max_depth:
            return  # nothing below can match a pattern this deep
        try:
            info = os.stat(path)
            if (info.st_dev, info.st_ino) in self.folders:
                return
            self.folders.add((info.st_dev, info.st_ino))
            with os.scandir(path) as found:
                entries = sorted(found, key=lambda e: e.name)
        except OSError as err:
            self.refused.append((rel, Reason.READ_ERROR, f"cannot list the folder ({err.strerror or err})", True))
            return
        literal = utf8_names(entries)
        for entry in entries:
            child = f"{rel}/{name_text(entry.name, literal)}".lstrip("/")
            self._entry(entry, real + b"/" + entry.name, child)

    def _entry(self, entry: os.DirEntry, real: bytes, rel: str) -> None:
        try:
            if entry.is_symlink():
                heapq.heappush(self.pending, (rel, entry.path))
            elif entry.is_dir(follow_symlinks=False):
                self._folder(entry.path, real, rel)
            elif entry.is_file(follow_symlinks=False):
                self.files.setdefault(real, rel)
            else:
                kind = _special(entry.stat(follow_symlinks=False).st_mode)
                self.refused.append((rel, Reason.READ_ERROR, f"{kind}, not a regular file", False))
        except OSError as err:
            self.refused.append((rel, Reason.READ_ERROR, f"cannot read the entry ({err.strerror or err})", False))

    def _link(self, rel: str, path: bytes) -> None:
        try:
            shown = name_text(os.readlink(path))
        except OSError:
            shown = "?"
        try:
            info = os.stat(path)
        except OSError as err:
            why = "a loop of links" if err.errno == errno.ELOOP else "a target that does not exist"
            self.refused.append((rel, Reason.BROKEN_LINK, f"a link to {shown!r}, {why}", False))
            return
        real = os.path.realpath(path)
        if _within(real, self.root) or real in self.files or (info.st_dev, info.st_ino) in self.folders:
            return  # the target is (or is inside) what the walk lists under its own path
        if self.links != "outside":
            self.refused.append(
                (
                    rel,
                    Reason.LINK_OUTSIDE_ROOT,
                    f"a link to {shown!r}, outside the input folder; "
                    "set follow_links: outside in the input block to read it",
                    stat.S_ISDIR(info.st_mode),
                )
            )
        elif stat.S_ISDIR(info.st_mode):
            self._folder(path, real, rel)
        elif stat.S_ISREG(info.st_mode):
            self.files[real] = rel
        else:
            self.refused.append((rel, Reason.BROKEN_LINK, f"a link to {shown!r}, {_special(info.st_mode)}", False))


Found = tuple[list[str], list[tuple[str, Reason, str, bool]]]


def walk(root: str, links: str = "inside", max_depth: int | None = None) -> Found:
    """(relative paths of the files, refused (relative path, reason, detail, is a folder)) under the local
    folder `root`, each sorted; `max_depth` limits how many names deep files are looked for. A missing
    root gives nothing; a root that is not a folder raises NotADirectoryError."""
    path = os.fsencode(os_path(root))
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return [], []
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(f"{root}: not a folder")
    state = _Walk(path, links, max_depth)
    state.run()
    return sorted(state.files.values()), sorted(state.refused)


def _under(head: str, rel: str) -> str:
    if not rel:
        return head or "."
    return f"{head.rstrip('/')}/{rel}" if head else rel


def _refused(head: str, found: tuple[str, Reason, str, bool]) -> Refused:
    rel, reason, detail, folder = found
    uri = _under(head, rel)
    return Refused(uri, reason, f"{uri}: {detail}", folder)


def list_tree(root: str, links: str = "inside") -> Tree:
    """The files (and refused entries) under local folder `root`, as paths `root/<relative path>`."""
    files, refused = walk(root, links)
    return Tree([_under(root, rel) for rel in files], [_refused(root, r) for r in refused])


def list_folder(folder: str) -> list[str]:
    """Files right inside local `folder`, sorted, including links to files (wherever they point); links to
    anything else, broken links and special files are left out. Raises OSError when it cannot be listed."""
    path = os.fsencode(os_path(folder))
    with os.scandir(path) as found:
        entries = sorted(found, key=lambda e: e.name)
    literal = utf8_names(entries)
    head = folder.rstrip("/")
    out = []
    for entry in entries:
        try:
            if entry.is_file():  # follows links
                out.append(f"{head}/{name_text(entry.name, literal)}")
        except OSError:
            continue
    return out


def glob_tree(pattern: str, links: str = "inside") -> Tree:
    """Files (and refused entries) matching a local glob pattern, `**` for any depth.

    As Python's glob: `*`, `?` and `[...]` stay within one name, wildcards do not match names that start
    with '.' unless the pattern's name does, `**` spans any number of folders (not hidden ones). The walk
    starts at the folder before the first wildcard, with the link rules of `walk`; the matches are written
    like the pattern (a relative pattern gives relative paths). A folder that cannot be listed is refused
    when matches could lie inside it.
    """
    segments = os.path.expanduser(pattern).split("/")
    first = next((i for i, s in enumerate(segments) if any(c in s for c in "*?[")), None)
    if first is None:
        path = "/".join(segments)
        return Tree([path] if os.path.isfile(os_path(path)) else [])
    head, rest = "/".join(segments[:first]), segments[first:]
    try:
        files, refused = walk(
            head or ("/" if pattern.startswith("/") else "."), links, None if "**" in rest else len(rest)
        )
    except NotADirectoryError:
        return Tree()
    head = head or ("/" if pattern.startswith("/") else "")
    return Tree(
        [_under(head, rel) for rel in files if _matches(rel.split("/"), rest)],
        [_refused(head, r) for r in refused if _could_hold(r, rest)],
    )


def _could_hold(found: tuple[str, Reason, str, bool], patterns: list[str]) -> bool:
    rel, _, _, folder = found
    parts = rel.split("/") if rel else []
    return _prefix_matches(parts, patterns) if folder else _matches(parts, patterns)


def _prefix_matches(parts: list[str], patterns: list[str]) -> bool:
    """Whether files matching `patterns` could lie under the folder `parts`."""
    if not parts:
        return True
    if not patterns:
        return False
    if patterns[0] == "**":
        return True
    return _segment(parts[0], patterns[0]) and _prefix_matches(parts[1:], patterns[1:])


def _segment(name: str, pattern: str) -> bool:
    return (pattern.startswith(".") or not name.startswith(".")) and fnmatch.fnmatchcase(name, pattern)


def _matches(parts: list[str], patterns: list[str]) -> bool:
    if not patterns:
        return not parts
    if patterns[0] == "**":
        return _matches(parts, patterns[1:]) or (
            bool(parts) and not parts[0].startswith(".") and _matches(parts[1:], patterns)
        )
    return bool(parts) and _segment(parts[0], patterns[0]) and _matches(parts[1:], patterns[1:])


def utf8_names(entries) -> set[str]:
    """The names of `entries` (os.scandir of a bytes path) that are valid UTF-8: what an escaped name must not
    collide with."""
    names = set()
    for entry in entries:
        try:
            names.add(entry.name.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    return names
