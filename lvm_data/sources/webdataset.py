"""`webdataset`: tar shards as img2dataset writes them ({key}.jpg + {key}.json / {key}.txt).

One unit per tar. Members are grouped by key (folder + file name up to the first dot, the
webdataset convention); the image member's bytes travel inline in `Part.data`, `.txt` becomes
`meta["caption"]` and `.json` `meta["json"]`. A sample without an image member, a key that
reappears later in the tar, and a tar that ends early or cannot be opened all become ledger rows.
A member name that is not UTF-8 is keyed percent-escaped (lvm_data.sources.tarlinks). A hard or symbolic
link member stands for the bytes of the earlier regular member it names; a link to no earlier member, to
a non-file, in a loop (`broken_link`) or out of the tar (`link_outside_root`), and a FIFO or device member
(`read_error`), fail their sample when it would use the member (image, .txt, .json).
A member whose header says it is larger than `max_item_bytes` is never read into memory (`_member`): its
sample fails with `file_too_large` when it would use the member (image, .txt, .json).
"""

from __future__ import annotations

import itertools
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from lvm_data import storage
from lvm_data.items import DEFAULT_MAX_ITEM_BYTES, ItemRef, Part
from lvm_data.outcomes import Reason
from lvm_data.sources.base import Source, Unit
from lvm_data.sources.files import IMAGE_EXTENSIONS
from lvm_data.sources.listing import (
    FileEntry,
    RefusedEntry,
    as_list,
    entry_uri,
    expand_inputs,
    failed_ref,
    follow_links,
    refused_ref,
    unit_ids,
)
from lvm_data.sources.tarlinks import Problem, TarLinks, is_compressed, member_name

TAR_SUFFIXES = (".tar", ".tgz", ".tar.gz")  # gzip'ed shards read as plain ones (tarfile detects the compression)


def is_tar_name(uri: str) -> bool:
    return uri.lower().endswith(TAR_SUFFIXES)


def tar_stem(name: str) -> str:
    lowered = name.lower()
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if lowered.endswith(suffix):
            return name[: len(name) - len(suffix)]
    return name


def _tar_key(unit: Unit) -> str:
    """The key of a unit's tar (its URI in a spec from before keys were relative)."""
    uri, *rest = unit.spec  # (uri, size) or (uri, size, key)
    return rest[1] if len(rest) > 1 else uri


def split_member(name: str) -> tuple[str, str]:
    """('dir/000012', 'jpg') from 'dir/000012.jpg'; the extension is everything after the first dot."""
    folder, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


class WebDataset(Source):
    format = "webdataset"

    def plan(self) -> list[Unit]:
        """A unit per tar, spec (uri, size, key); a tar the listing refused (a link out of its folder) is a unit of
        one failed item, its spec a RefusedEntry. A tar's key is its path below its entry's root
        (lvm_data.sources.listing), its samples' keys `TAR_KEY#MEMBER_KEY`."""
        tars = expand_inputs(
            self.name, self.options["paths"], ("tar", "tgz", "gz"), follow_links(self.name, self.options)
        )
        named = {
            p if storage.is_remote(p) else os.path.abspath(os.path.expanduser(p))
            for p in as_list(self.options["paths"])
        }
        # a folder's .gz files that are not .tar.gz are not shards; a file named in `paths` is read whatever its name
        entries = [
            e
            for e in tars.entries()
            if isinstance(e, RefusedEntry) or is_tar_name(entry_uri(e)) or entry_uri(e) in named
        ]
        names = [tar_stem(entry_uri(e).rsplit("/", 1)[-1]) for e in entries]
        return [self._unit(uid, e) for uid, e in zip(unit_ids(names), entries, strict=True)]

    def _unit(self, uid: str, entry: FileEntry | RefusedEntry) -> Unit:
        if isinstance(entry, RefusedEntry):
            return Unit(self.name, uid, entry, 1)
        return Unit(self.name, uid, (entry.uri, storage.size(entry.uri), entry.key), None)

    def files(self, unit: Unit) -> list[str]:
        """The tar."""
        return [unit.spec[0]]

    def read(self, unit: Unit) -> Iterator[ItemRef]:
        if isinstance(unit.spec, RefusedEntry):
            yield refused_ref(self.name, unit.id, unit.spec)
            return
        tar_uri = unit.spec[0]
        seen: set[str] = set()
        current, members, links = None, {}, TarLinks(tar_uri)
        try:
            with (
                storage.open_input_stream(tar_uri) as stream,
                tarfile.open(fileobj=stream, mode="r|*", encoding="utf-8", errors="surrogateescape") as tar,
            ):
                links.compressed = is_compressed(tar)
                for info in _members(tar):
                    links.add(info)
                    name = member_name(info)
                    if info.isdir() or name.rsplit("/", 1)[-1].startswith("."):
                        continue
                    key, ext = split_member(name)
                    if key != current and current is not None:
                        yield self._item(unit, tar_uri, current, members, seen)
                        members = {}
                    current = key
                    members[ext] = self._member(tar, info) if info.isfile() else self._linked(links, info)
                if current is not None:
                    yield self._item(unit, tar_uri, current, members, seen)
                    members = {}
                _check_end(tar)
        except (tarfile.TarError, OSError, EOFError, ValueError, TypeError) as err:  # Python 3.11's tarfile raises
            # ValueError for a bad PAX number, TypeError for a gzip header cut short (found by benchmarks/fuzz.py)
            if current is not None and members:
                yield self._item(unit, tar_uri, current, members, seen)
            # a cut tar: tarfile's "unexpected end", a first header cut short, Arrow's "Truncated compressed stream"
            reason = (
                Reason.TRUNCATED
                if any(s in str(err).lower() for s in ("unexpected end", "truncated"))
                else Reason.READ_ERROR
            )
            yield failed_ref(
                self.name,
                f"{_tar_key(unit)}#<unreadable>",
                unit.id,
                tar_uri,
                reason,
                f"{tar_uri}: {type(err).__name__}: {err}; samples after this point were not read",
            )

    def _item(self, unit: Unit, tar_uri: str, key: str, members: dict[str, bytes], seen: set[str]) -> ItemRef:
        item_key, where = f"{_tar_key(unit)}#{key}", f"{tar_uri}#{key}"  # the key, and where the sample is
        if item_key in seen:  # keyed by the first free @N: rows of repeats stay unique
            again = next(f"{item_key}@{n}" for n in itertools.count(len(seen)) if f"{item_key}@{n}" not in seen)
            seen.add(again)
            return failed_ref(
                self.name,
                again,
                unit.id,
                where,
                Reason.READ_ERROR,
                f"{where}: key appears again later in the tar; webdataset samples must be contiguous and keys unique",
            )
        seen.add(item_key)
        wanted = self.options.get("image_extensions", IMAGE_EXTENSIONS)
        ext = next((e for e in wanted if e in members), None)
        problem = next((m for e, m in members.items() if isinstance(m, Problem) and e in (ext, "txt", "json")), None)
        if problem is not None:
            return failed_ref(self.name, item_key, unit.id, where, problem.reason, problem.detail)
        unread = next((m for e, m in members.items() if isinstance(m, Unread) and e in (ext, "txt", "json")), None)
        if unread is not None:
            return failed_ref(self.name, item_key, unit.id, where, Reason.FILE_TOO_LARGE, f"{where}: {unread}")
        meta = _meta(members)
        if ext is None:
            return failed_ref(
                self.name,
                item_key,
                unit.id,
                where,
                Reason.NOT_MEDIA,
                f"{where}: no image member (has {', '.join(sorted(members)) or 'nothing'}; "
                f"looked for {', '.join(wanted)})",
            )
        return ItemRef(
            source=self.name,
            key=item_key,
            unit=unit.id,
            parts={"image": Part(f"{tar_uri}#{key}.{ext}", data=members[ext])},
            meta=meta,
        )

    def _member(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes | Unread:
        """The member's bytes, or `Unread` when its header says more than `max_item_bytes`: then it is drained in
        1 MiB reads, so a gzip'ed tar inflates it piece by piece (tarfile's own skip re-slices its inflated buffer per
        10 KiB: 5.7 s against 1.1 s for 256 MiB of zeros)."""
        limit = int(self.options.get("max_item_bytes", DEFAULT_MAX_ITEM_BYTES))
        if info.size <= limit:
            member = tar.extractfile(info)
            assert member is not None, "called for regular members only (info.isfile())"
            return member.read()
        if not info.issparse():  # a sparse member's holes read as zeros, and its header may claim any size (fuzz.py)
            stream = tar.extractfile(info)
            assert stream is not None, "called for regular members only (info.isfile())"
            while stream.read(2**20):
                pass
        return Unread(member_name(info), info.size, limit)

    def _linked(self, links: TarLinks, info: tarfile.TarInfo) -> bytes | Unread | Problem:
        """A link member's bytes (those of the member it names, within `max_item_bytes`), or why none."""
        target = links.target(info)
        if isinstance(target, Problem):
            return target
        limit = int(self.options.get("max_item_bytes", DEFAULT_MAX_ITEM_BYTES))
        return links.read(target) if target.size <= limit else Unread(member_name(info), target.size, limit)


@dataclass(frozen=True)
class Unread:
    """A member left unread: its tar header says `size` bytes, more than the job's `max_item_bytes`."""

    name: str
    size: int
    limit: int

    def __str__(self) -> str:
        return (
            f"member {self.name} has {self.size} bytes, over the limit of {self.limit} bytes (max_item_bytes); "
            "it was not read. Raise max_item_bytes in the job file to read such members"
        )


def _meta(members: dict[str, bytes]) -> dict:
    meta = {}
    if "txt" in members:
        meta["caption"] = members["txt"].decode("utf-8", errors="replace")
    if "json" in members:
        try:
            meta["json"] = json.loads(members["json"])
        except (ValueError, RecursionError):  # not JSON, not UTF-8, a number of over 4300 digits, nested too deep
            meta["json_error"] = "unparseable .json member"
    return meta


def _check_end(tar: tarfile.TarFile) -> None:
    """Raise ReadError when more than zeros follows the header where the iteration ended: tarfile ends it silently
    at a header it cannot parse (a bad checksum) after the first, and the samples after it would get no row.
    Raise ReadError "unexpected end" (reason `truncated`) when that header is not a whole 512-byte block: tarfile
    ends just as silently at a tar cut at or inside a member header, which a whole archive never is (it ends
    with zero blocks); how many samples were lost is unknowable."""
    header = tar.fileobj.tell() - tar.offset  # bytes of the last header read (stream offsets: uncompressed)
    if header < tarfile.BLOCKSIZE:
        where = "a member header" if header == 0 else f"the member header at byte {tar.offset}"
        of = " of the uncompressed tar" if is_compressed(tar) else ""
        raise tarfile.ReadError(
            f"unexpected end of archive at byte {tar.offset + header}{of}: the tar is cut "
            f"short at {where}, before its end-of-archive blocks"
        )
    while chunk := tar.fileobj.read(tarfile.RECORDSIZE):
        if chunk.strip(b"\0"):
            raise tarfile.ReadError(f"unreadable member header at byte {tar.offset}")


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """`for info in tar`, each next header reached by reads of ours that stop at the end of the data: tarfile's
    stream seek reads 10 KiB at a time and goes on past the end, so a header claiming petabytes (a PAX size on a
    sparse member) loops for hours (found by benchmarks/fuzz.py). The end is ReadError "unexpected end"."""
    while (info := tar.next()) is not None:
        yield info  # the caller reads the member's data, then the rest of it is skipped here
        while (gap := tar.offset - tar.fileobj.tell()) > 0:
            if not tar.fileobj.read(min(gap, 2**20)):
                raise tarfile.ReadError(
                    f"unexpected end of data: a member header says the next one is at byte "
                    f"{tar.offset}, past the end of the tar"
                )
