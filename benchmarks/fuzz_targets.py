"""The checks benchmarks/fuzz.py runs, one per target, in an isolated worker process; each returns a `Verdict`.

Contracts (cases and seeds: benchmarks/fuzz_cases.py):

- image: `decode_item` returns frames of (S, S, 3) uint8 or raises ItemError (not internal_error);
- video: `read_clips` (the decoder process's work) returns every clip's frames, or raises ItemError; a backend
  that hangs or kills its process is a finding too, though in the pipeline the isolation turns it into a row;
- tar: `WebDataset.read` raises nothing, yields well-formed refs with unique keys whose decode is as above,
  and never silently stops early (members a lenient parse finds after where it stopped need a failed row);
- job: `parse_job_text` returns a JobConfig that can be resolved and hashed, or raises JobConfigError.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import resource
import tarfile
import tempfile
import traceback
import warnings
import zlib
from typing import Any, NamedTuple

import numpy as np

from lvm_data.items import ERROR_META, ItemRef, Part
from lvm_data.media.clips import ClipSpec
from lvm_data.media.contract import DecodeSettings
from lvm_data.media.decode import decode_item
from lvm_data.media.video import VideoRequest, read_clips
from lvm_data.outcomes import ItemError, Reason
from lvm_data.sources.base import Unit
from lvm_data.sources.webdataset import WebDataset, split_member


class Verdict(NamedTuple):
    outcome: str  # "ok", a reason code, or "exception"
    kind: str = ""  # "" while the contract holds; else exception, internal_error, bad_output, hang, crash, ...
    signature: str = ""  # what tells one finding from another: exception type and innermost frame
    detail: str = ""


class Limits(NamedTuple):
    memory_mb: int = 4096  # address space of the worker (and of the video decoder's own worker)
    timeout_s: float = 20.0  # a video's decode
    log: str = ""  # where the worker's stderr goes (native decoders print their complaints there)


def run_check(target: str, data: Any, limits: Limits) -> Verdict:
    """The target's check, in a worker process: its address space capped, its stderr sent to `limits.log`."""
    if resource.getrlimit(resource.RLIMIT_AS)[0] != limits.memory_mb << 20:
        warnings.simplefilter("ignore")  # Pillow's warnings about the damage are expected
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb << 20, resource.getrlimit(resource.RLIMIT_AS)[1]))
        if limits.log:
            with open(limits.log, "ab") as log:
                os.dup2(log.fileno(), 2)
    return CHECKS[target](data, limits.timeout_s)


def probe() -> str:
    """What the fuzz runner calls to tell a worker that cannot start from one that an input killed."""
    return "ok"


def check_image(data: tuple[bytes, DecodeSettings], timeout_s: float) -> Verdict:
    blob, settings = data
    return decoded(ItemRef("fuzz", "k", "u", {"image": Part("fuzz/item.img", data=blob)}), settings)


def check_video(data: tuple[bytes, str, ClipSpec], timeout_s: float) -> Verdict:
    """`read_clips`, what the pipeline's decoder process runs, here in the fuzz worker: an exception that the
    process boundary would turn into a decode_error shows, and a hang or crash is the worker's."""
    blob, ext, spec = data
    with tempfile.TemporaryDirectory(prefix="lvm-fuzz-") as folder:
        path = os.path.join(folder, f"video{ext}")
        with open(path, "wb") as f:
            f.write(blob)
        try:
            result = read_clips(VideoRequest(path, f"fuzz/item{ext}", "k", spec, size=16))
        except ItemError as err:
            return _item_error_verdict(err)
        except Exception as err:  # noqa: BLE001 - the finding
            return exception_verdict(err)
    wanted = [i for clip in result.clips for i in clip.indices]
    bad = [
        i
        for i in wanted
        if i not in result.frames or result.frames[i].shape != (16, 16, 3) or result.frames[i].dtype != np.uint8
    ]
    if bad or not wanted:
        return Verdict("ok", "bad_output", "bad_output", f"frames {bad or 'none'} missing or not (16, 16, 3) uint8")
    return Verdict("ok")


def decoded(ref: ItemRef, settings: DecodeSettings) -> Verdict:
    """decode_item's verdict: ok with well-formed frames, or an ItemError reason that is not internal_error."""
    try:
        item = decode_item(ref, settings)
    except ItemError as err:
        return _item_error_verdict(err)
    except Exception as err:  # noqa: BLE001 - the finding
        return exception_verdict(err)
    size = settings.image_size
    bad = [f.pixels.shape for f in item.frames if f.pixels.dtype != np.uint8 or f.pixels.shape != (size, size, 3)]
    if bad or not item.frames:
        return Verdict("ok", "bad_output", "bad_output", f"frames {bad or 'none'}; expected ({size}, {size}, 3) uint8")
    return Verdict("ok")


def _item_error_verdict(err: ItemError) -> Verdict:
    if err.reason is Reason.INTERNAL_ERROR:
        return Verdict(err.reason.value, "internal_error", f"internal_error: {err.detail[:60]}", err.detail)
    return Verdict(err.reason.value, detail=err.detail)


def exception_verdict(err: BaseException) -> Verdict:
    frames = traceback.extract_tb(err.__traceback__)
    where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
    return Verdict("exception", "exception", f"{type(err).__name__}{where}", "".join(traceback.format_exception(err)))


def check_tar(blob: bytes, timeout_s: float) -> Verdict:
    with tempfile.TemporaryDirectory(prefix="lvm-fuzz-") as folder:
        path = os.path.join(folder, "00000.tar")
        with open(path, "wb") as f:
            f.write(blob)
        source = WebDataset("fuzz", {"format": "webdataset", "paths": path, "shard_size": 100})
        try:
            (unit,) = source.plan()
            refs = list(source.read(unit))
        except Exception as err:  # noqa: BLE001 - the finding
            return exception_verdict(err)
        return tar_refs_verdict(refs, unit, blob, path)


def tar_refs_verdict(refs: list[ItemRef], unit: Unit, blob: bytes, path: str) -> Verdict:
    keys = [r.key for r in refs]
    if len(set(keys)) != len(keys):
        return Verdict("ok", "bad_output", "duplicate keys", f"keys {keys}")
    for ref in refs:
        error = ref.meta.get(ERROR_META)
        if ref.unit != unit.id or (not ref.parts and not error) or (error and error["reason"] not in set(Reason)):
            return Verdict("ok", "bad_output", "malformed ref", repr(ref))
        if any(not isinstance(p.data, bytes) for p in ref.parts.values()):
            return Verdict("ok", "bad_output", "part without bytes", repr(ref))
        verdict = decoded(ref, DecodeSettings(image_size=8))
        if verdict.kind:
            return verdict
    if not any(k.endswith("#<unreadable>") for k in keys):
        lost = sorted(set(members_after_stop(blob)) - {k.rsplit("#", 1)[-1] for k in keys})
        if lost:
            return Verdict(
                "ok",
                "lost_members",
                "members after a bad header have no row",
                f"{len(lost)} member keys a lenient parse finds have no ledger row: {lost[:5]}",
            )
    failed = [r.meta[ERROR_META]["reason"] for r in refs if ERROR_META in r.meta]
    return Verdict(failed[-1] if failed else "ok" if refs else "empty")


def members_after_stop(blob: bytes) -> list[str]:
    """Keys of regular members that tarfile finds (ignoring bad headers) after the point where a strict read
    stopped without an error: a header it could not parse hides every member after it."""
    data = _decompressed(blob)
    if data is None:
        return []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            while tar.next() is not None:
                pass
            stop = tar.offset
    except (tarfile.TarError, OSError, EOFError, ValueError):
        return []
    if data[stop : stop + 512].strip(b"\x00") == b"" or stop >= len(data):
        return []  # an end-of-archive block or the end of the data: nothing was skipped
    try:
        with tarfile.open(fileobj=io.BytesIO(data[stop:]), mode="r:", ignore_zeros=True) as tar:
            return [split_member(m.name)[0] for m in tar if m.isfile()]
    except (tarfile.TarError, OSError, EOFError, ValueError):
        return []


def _decompressed(blob: bytes) -> bytes | None:
    try:
        for magic, opener in ((b"\x1f\x8b", gzip.decompress), (b"BZh", bz2.decompress), (b"\xfd7zXZ", lzma.decompress)):
            if blob.startswith(magic):
                return opener(blob)
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error):
        return None
    return blob


def check_job(text: str, timeout_s: float) -> Verdict:
    from lvm_data.job.config import JobConfigError, config_hash, job_to_dict, parse_job_text, with_resolved

    try:
        job = parse_job_text(text, where="fuzz.yaml")
    except JobConfigError as err:
        if not str(err).startswith("fuzz.yaml"):
            return Verdict("rejected", "bad_output", "message does not name the file", str(err))
        return Verdict("rejected")
    except Exception as err:  # noqa: BLE001 - the finding
        return exception_verdict(err)
    try:
        config_hash(with_resolved(job, 256, 256), "fingerprint")
        job_to_dict(job)
    except Exception as err:  # noqa: BLE001 - an accepted job must get as far as its config hash
        return exception_verdict(err)
    return Verdict("ok")


CHECKS = {"image": check_image, "video": check_video, "tar": check_tar, "job": check_job}
