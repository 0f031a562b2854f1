"""Names and links of tar members, for readers that stream a tar once (lvm_data.sources.webdataset).

Names: a member name that is not UTF-8 is written as lvm_data.localfs writes file names (each byte outside
valid UTF-8 as %XX, '%' as %25), so keys and ledger rows never hold surrogates.

Links: a hard link or symbolic link member stands for the bytes of the regular member it names, found
among the members before it (a hard link always names an earlier member; a symbolic link is resolved
relative to its own folder and may pass through other links). The bytes are read again from the tar: one
ranged read of an uncompressed tar, a second pass over a compressed one. A link that names no earlier
member, names one that is not a regular file, loops, or (a symbolic link) is absolute or climbs out with
`..`, is a `Problem` instead, which fails its sample.
"""

from __future__ import annotations

import posixpath
import tarfile
from dataclasses import dataclass

from lvm_data import storage
from lvm_data.localfs import name_text
from lvm_data.outcomes import Reason

MAX_HOPS = 40  # links followed through other links, as the Linux kernel's limit


@dataclass(frozen=True)
class Problem:
    """Why a member has no bytes: it fails the sample it belongs to."""

    reason: Reason
    detail: str


def member_name(info: tarfile.TarInfo) -> str:
    """The member's name as text; tarfile reads names as UTF-8 with surrogateescape, so this is lossless."""
    return name_text(info.name.encode("utf-8", "surrogateescape"))


def _normal(path: str) -> str | None:
    """A member path without './', 'a/../' and leading '/'; None when it climbs out of the tar."""
    path = posixpath.normpath(path.lstrip("/"))
    return None if path == ".." or path.startswith("../") else path


class TarLinks:
    """The members of one tar as a stream goes by (`add` each), and the bytes a link member stands for."""

    def __init__(self, tar_uri: str):
        self.tar_uri = tar_uri
        self.members: dict[str, tuple] = {}  # normal name -> ("file", TarInfo) | ("link", target | None, name)
        self.compressed = False

    def add(self, info: tarfile.TarInfo) -> None:
        name = _normal(info.name)
        if name is None:
            return
        if info.isreg():
            self.members[name] = ("file", info)
        elif info.islnk():
            self.members[name] = ("link", _normal(info.linkname), info.linkname)
        elif info.issym():
            target = (
                None
                if info.linkname.startswith("/")
                else _normal(posixpath.join(posixpath.dirname(name), info.linkname))
            )
            self.members[name] = ("link", target, info.linkname)
        else:
            self.members[name] = ("other", info)

    def target(self, info: tarfile.TarInfo) -> tarfile.TarInfo | Problem:
        """The regular member that member `info` (already added; not a regular file) stands for, or why not:
        a link is followed; a FIFO or device member has no bytes (read_error)."""
        if not (info.islnk() or info.issym()):
            kind = "FIFO" if info.isfifo() else "device" if info.isdev() else f"type {info.type!r}"
            return Problem(Reason.READ_ERROR, f"{self.tar_uri}#{member_name(info)}: a {kind} member, not a file")
        where = f"{self.tar_uri}#{member_name(info)}"
        name, seen = _normal(info.name), set()
        while len(seen) <= MAX_HOPS:
            entry = self.members.get(name) if name is not None else None
            if entry is None or entry[0] == "other":
                what = "is not a regular member" if entry else "is no member before it in the tar"
                return Problem(Reason.BROKEN_LINK, f"{where}: a link to {_shown(info.linkname)!r}, which {what}")
            if entry[0] == "file":
                return entry[1]
            seen.add(name)
            if entry[1] is None:
                return Problem(Reason.LINK_OUTSIDE_ROOT, f"{where}: a link to {_shown(entry[2])!r}, outside the tar")
            name = entry[1]
            if name in seen:
                break
        return Problem(Reason.BROKEN_LINK, f"{where}: a link to {_shown(info.linkname)!r}, a loop of links")

    def read(self, target: tarfile.TarInfo) -> bytes:
        """Read an earlier regular member again: a ranged read of an uncompressed tar, else a second pass."""
        if not self.compressed and not target.issparse():
            with storage.open_input(self.tar_uri) as f:
                f.seek(target.offset_data)
                return f.read(target.size)
        with (
            storage.open_input_stream(self.tar_uri) as stream,
            tarfile.open(fileobj=stream, mode="r|*", encoding="utf-8", errors="surrogateescape") as tar,
        ):
            for info in tar:
                if info.offset == target.offset:
                    member = tar.extractfile(info)
                    assert member is not None, "the target is a regular member"
                    return member.read()
        raise EOFError(f"{self.tar_uri}: member {target.name!r} not found on a second read")


def _shown(name: str) -> str:
    return name_text(name.encode("utf-8", "surrogateescape"))


def is_compressed(tar: tarfile.TarFile) -> bool:
    """Whether a tar opened as a stream ("r|*") is compressed (its offsets are then not the file's)."""
    return getattr(tar.fileobj, "comptype", "tar") != "tar"
