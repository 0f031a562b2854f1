"""Storage faults for people: a full disk, a folder this user may not write, an object store that keeps failing.

Such a fault ends the run (nothing partial is visible: files are moved into place whole, a unit's marker last,
and a unit that could not commit leaves no visible file; a rerun redoes the uncommitted units). The CLI prints it
as one line that names the output, the path and errno, and what to do (`describe`), with exit status 2.

Beam hands a worker's exception back in one of two shapes, and `find_fault` reads both: the exception itself with
its causes chained (the embedded runner in one process: a UnitFailed whose `__cause__` is the OSError), or a
RuntimeError whose message is the worker's traceback as text (worker processes, portable runners, Dataflow).
"""

from __future__ import annotations

import errno as errnos
import os
import re
from dataclasses import dataclass

from lvm_data import storage

BEAM_SUFFIX = re.compile(r"\s*\[while running '[^']*'\]")
ERRNO = re.compile(r"\[Errno (\d+)\]\s*")
QUOTED_PATH = re.compile(r"'([^']*/[^']*)'")
STATUS = re.compile(r"Status\((\w+)")  # pyarrow's GCS errors: google::cloud::Status(UNAVAILABLE: ...)
MAX_CHAIN = 32

FULL = {errnos.ENOSPC, errnos.EDQUOT, errnos.EFBIG}
DENIED = {errnos.EACCES, errnos.EPERM, errnos.EROFS}
IN_THE_WAY = {errnos.ENOTDIR, errnos.EISDIR, errnos.EEXIST}
DENIED_STATUS = ("PERMISSION_DENIED", "UNAUTHENTICATED", "FORBIDDEN", "ACCESS_DENIED")


@dataclass(frozen=True)
class StorageFault:
    """An OSError met while the job read or wrote storage: its class name, errno (None for most object-store
    errors), one line of its text (without the errno prefix and Beam's step suffix) and the path it names."""

    kind: str
    errno: int | None
    text: str
    path: str | None = None

    @property
    def code(self) -> str:
        """'ENOSPC' for errno 28; '' when there is no errno."""
        return errnos.errorcode.get(self.errno, "") if self.errno is not None else ""


def _os_error_names() -> frozenset[str]:
    found, todo = set(), [OSError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo += cls.__subclasses__()
    return frozenset(found)


def _fault_line() -> re.Pattern:
    """'OSError: [Errno 28] text' or 'pyarrow.lib.ArrowIOError: text' anywhere in a line of a traceback."""
    names = "|".join(sorted(map(re.escape, _os_error_names() | {"ArrowIOError"}), key=len, reverse=True))
    return re.compile(rf"(?:^|(?<=[\s:]))(?:[\w.]+\.)?({names}): (.*)$", re.MULTILINE)


def find_fault(err: BaseException) -> StorageFault | None:
    """The storage fault behind `err` (its cause chain, or the traceback text a worker sent), or None."""
    seen, current = set(), err
    while current is not None and id(current) not in seen and len(seen) < MAX_CHAIN:
        seen.add(id(current))
        if isinstance(current, OSError):
            return _from_error(current)
        current = current.__cause__ or current.__context__
    return fault_in_text(str(err))


def _from_error(err: OSError) -> StorageFault:
    text = err.strerror if isinstance(err.strerror, str) and err.strerror else str(err) or type(err).__name__
    return _fault(
        type(err).__name__,
        text,
        err.errno if isinstance(err.errno, int) else None,
        err.filename if isinstance(err.filename, str) else None,
    )


def fault_in_text(text: str) -> StorageFault | None:
    """The first OSError line of a traceback or log text (a worker's log escapes its newlines), or None."""
    found = _fault_line().search(text)
    return None if found is None else _fault(found.group(1), found.group(2))


def _fault(kind: str, text: str, number: int | None = None, path: str | None = None) -> StorageFault:
    text = BEAM_SUFFIX.sub("", re.split(r"\n|\\n", text)[0]).strip()  # a worker's log escapes its newlines
    number = number if number is not None else _errno_in(text)
    path = path or _path_in(text)
    text = ERRNO.sub("", text, count=1).strip()
    if path and text.endswith(f": '{path}'"):  # Python's "[Errno 28] No space left on device: '/out/x'"
        text = text[: -len(path) - 4]
    return StorageFault(kind, number, text, path)


def _errno_in(text: str) -> int | None:
    found = ERRNO.search(text)
    return int(found.group(1)) if found else None


def _path_in(text: str) -> str | None:
    found = QUOTED_PATH.search(text)
    return found.group(1) if found else None


def _inside(path: str, folder: str) -> bool:
    if not storage.is_remote(path) and not storage.is_remote(folder):
        path, folder = (os.path.abspath(os.path.expanduser(p)) for p in (path, folder))
    else:  # pyarrow names objects without their scheme (bucket/key)
        path, folder = path.split("://", 1)[-1].rstrip("/"), folder.split("://", 1)[-1].rstrip("/")
    return path == folder or path.startswith(folder + "/")


def describe(fault: StorageFault, out: str) -> str:
    """One line: what failed where (the output, the path, the errno), what to do, and that a rerun resumes."""
    error = (
        f"[Errno {fault.errno}] {fault.text} ({fault.code})"
        if fault.errno is not None
        else f"{fault.kind}: {fault.text}"
    )
    in_output = fault.path is None or _inside(fault.path, out)
    where = f" at {fault.path}" if fault.path and fault.path.rstrip("/") != out.rstrip("/") else ""
    lead = f"writing the job output {out} failed" if in_output else f"a storage error stopped the job (output {out})"
    advice = _advice(fault, out) if in_output else _advice(fault, fault.path or out, writing=False)
    return (
        f"{lead}: {error}{where}; {advice}, then run the same command again: committed units are kept and the "
        "rest is redone (nothing partial is visible)"
    )


def _advice(fault: StorageFault, place: str, writing: bool = True) -> str:
    if fault.errno in FULL:
        return f"free space on the disk that holds {place} (or raise its quota, or set output: to a disk with room)"
    if fault.errno in DENIED:
        if not writing:
            return f"make {place} readable for this user"
        return f"make {place} writable for this user (or set output: to a folder you can write)"
    if fault.errno in IN_THE_WAY:
        return f"a file stands where {place} needs a folder (or the reverse): move it away, or use a new output folder"
    if fault.errno == errnos.ENOENT:
        return f"part of {place} disappeared while the job ran (deleted or unmounted?): check it"
    status = STATUS.search(fault.text)
    if status and status.group(1) in DENIED_STATUS or fault.kind == "PermissionError":
        return f"check the credentials and their permissions on {place}"
    if fault.errno is None:
        return (
            f"the storage of {place} kept failing (after its own retries): check the network, credentials and "
            "the service's status"
        )
    return f"check the disk or mount that holds {place}"
