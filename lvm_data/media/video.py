"""Video files -> sampled clips of RGB frames, decoded in an isolated worker process.

Backends are tried in order (default PyAV, then OpenCV, then decord): when one fails to open the
file or to return every wanted frame, the next one gets the file. decord comes last although it seeks
fastest, and gets only files the others could not open: its reader thread decodes ahead, so on a
damaged stream whether it fails depends on timing (one test file: 0 of 12 reads failed on an idle
machine, 9 of 12 under load), and what a file becomes must not depend on the machine's load. A
video that fits no clip is `too_short` (no fallback: the frame count is a fact of the file). Every
backend returns upright RGB: decord and OpenCV apply the container's rotation (display matrix)
themselves, PyAV frames are rotated here by `frame.rotation`; OpenCV's BGR is flipped. Frames are
resized to the tokenizer's size inside the worker, so only small arrays travel back.

`decode_video` runs `read_clips` through `lvm_data.media.isolate`: a backend that segfaults becomes
`ItemError(decoder_crash)`, one that hangs `ItemError(timeout)`. `decode_video_part` is the decode table's
decoder for role "video" (lvm_data.media.contract.PartDecoder).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from lvm_data import localfs, storage
from lvm_data.items import Frame, Part
from lvm_data.media.clips import Clip, ClipSpec, plan_clips, shortest_video
from lvm_data.media.contract import DecodeSettings, PartFrames
from lvm_data.media.isolate import IsolatedWorker, worker_for_thread
from lvm_data.media.parts import ClipPart
from lvm_data.media.resize import resize
from lvm_data.outcomes import ItemError, Reason

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ogv", ".3gp", ".flv", ".wmv")
DEFAULT_BACKENDS = ("pyav", "opencv", "decord")
TIMING_DEPENDENT = frozenset({"decord"})  # never given a file that another backend opened but could not read
NOT_INSTALLED = ": not installed "
DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class VideoRequest:
    """Everything the worker needs: a local file, how to sample it, the output size."""

    path: str
    name: str  # the item's uri, for messages
    key: str  # the item's key, seeds the clip choice
    spec: ClipSpec
    seed: int = 0
    size: int = 256
    policy: str = "squash"
    backends: tuple = DEFAULT_BACKENDS  # names, or top-level functions with the signature of `_decord`


@dataclass
class VideoClips:
    """Sampled clips and their frames (index -> (size, size, 3) uint8 RGB), with facts about the file."""

    n_frames: int
    fps: float
    width: int
    height: int
    backend: str
    clips: list[Clip]
    frames: dict[int, np.ndarray] = field(repr=False)
    errors: list[str] = field(default_factory=list)  # backends that failed before this one


@dataclass
class Opened:
    """A backend's view of a file: frame count, rate, and a reader of upright RGB frames at given indices."""

    n_frames: int
    fps: float
    read: Callable[[list[int]], list[np.ndarray]]


def decode_video(
    data: bytes | None,
    uri: str,
    request: VideoRequest,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    worker: IsolatedWorker | None = None,
) -> VideoClips:
    """Sample and decode a video in an isolated worker. `data` is the file's bytes, or None to read `uri`.

    Raises ItemError: too_short, decode_error, not_media, empty_file, read_error, timeout, decoder_crash;
    MemoryError when the decoder process ran out of memory (decode_item makes it out_of_memory).
    """
    worker = worker or worker_for_thread()
    if data is None:
        return _read_clips_confirmed(worker, request, timeout_s, uri)
    if not data:
        raise ItemError(Reason.EMPTY_FILE, f"{uri}: file is empty")
    suffix = os.path.splitext(uri)[1][:8] or ".mp4"
    with tempfile.TemporaryDirectory(prefix="lvm-video-") as folder:
        path = os.path.join(folder, f"video{suffix}")
        with open(path, "wb") as f:
            f.write(data)
        local = VideoRequest(
            path, request.name, request.key, request.spec, request.seed, request.size, request.policy, request.backends
        )
        return _read_clips_confirmed(worker, local, timeout_s, uri)


def _read_clips_confirmed(worker: IsolatedWorker, request: VideoRequest, timeout_s: float, uri: str) -> VideoClips:
    """`read_clips` in the worker; when a backend failed on the file and the worker had decoded other files
    before, the call is redone in a fresh process and that answer stands. decord's state after earlier
    files can fail a damaged file it reads alone, and then another backend's frame count picks other clips:
    the outcome would depend on which files a worker saw first, so on the worker count."""
    used = worker.used
    try:
        result = worker.call(read_clips, request, timeout_s=timeout_s, name=uri)
        if not used or not _a_backend_failed(result.errors):
            return result
    except ItemError as err:
        if not used or err.reason not in (Reason.DECODE_ERROR, Reason.NOT_MEDIA):
            raise
    worker.close()
    return worker.call(read_clips, request, timeout_s=timeout_s, name=uri)


def _a_backend_failed(errors: list[str]) -> bool:
    return any(NOT_INSTALLED not in error for error in errors)


def read_clips(request: VideoRequest) -> VideoClips:
    """In-process decode with backend fallback (the worker runs this). Raises ItemError, or MemoryError (no
    fallback: another backend needs the same frames)."""
    if not os.path.exists(request.path):
        raise ItemError(Reason.READ_ERROR, f"{request.name}: no such file")
    if os.path.getsize(request.path) == 0:
        raise ItemError(Reason.EMPTY_FILE, f"{request.name}: file is empty")
    errors: list[str] = []
    unreadable = False  # a backend opened the file and failed to read the wanted frames: the data is damaged
    for backend in request.backends:
        opener = BACKENDS[backend] if isinstance(backend, str) else backend
        label = backend if isinstance(backend, str) else getattr(backend, "__name__", "backend")
        if unreadable and label in TIMING_DEPENDENT:
            errors.append(f"{label}: not tried on damaged data (whether it reads it depends on timing)")
            continue
        try:
            opened = opener(request.path)
        except ImportError as err:
            errors.append(f"{label}{NOT_INSTALLED}({err}); pip install {PIP_NAMES.get(label, label)}")
            continue
        except MemoryError:  # not the backend's failure: the item's (decode_item says out_of_memory)
            raise
        except Exception as err:  # noqa: BLE001 - any backend failure means: try the next one
            errors.append(f"{label}: cannot open: {type(err).__name__}: {err}")
            continue
        clips = plan_clips(opened.n_frames, opened.fps, request.spec, request.seed, request.key)
        if not clips:
            raise ItemError(
                Reason.TOO_SHORT,
                f"{request.name}: {opened.n_frames} frames at {opened.fps:.3g} fps; "
                f"one clip needs {shortest_video(request.spec, opened.fps)}",
            )
        wanted = sorted({i for clip in clips for i in clip.indices})
        try:
            frames = _checked(opened.read(wanted), len(wanted))
        except MemoryError:
            raise
        except Exception as err:  # noqa: BLE001
            errors.append(f"{label}: {type(err).__name__}: {err}")
            unreadable = True
            continue
        resized = {i: resize(f, request.size, request.policy) for i, f in zip(wanted, frames, strict=True)}
        height, width = frames[0].shape[:2]  # as displayed (rotation applied), not as stored
        return VideoClips(opened.n_frames, opened.fps, width, height, label, clips, resized, errors)
    reason = Reason.DECODE_ERROR if _looks_like_video(request.path) else Reason.NOT_MEDIA
    raise ItemError(reason, f"{request.name}: no backend could decode it: {'; '.join(errors)}")


def _looks_like_video(path: str) -> bool:
    """Whether the file starts like a container we know (ISO BMFF/QuickTime, Matroska/WebM, AVI, MPEG, Ogg, FLV)."""
    with open(path, "rb") as f:
        head = f.read(16)
    return (
        head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
        or head[:4] == b"\x1a\x45\xdf\xa3"
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
        or head[:3] in (b"\x00\x00\x01", b"FLV")
        or head[:4] == b"OggS"
        or head[:4] == b"\x30\x26\xb2\x75"
    )


def _checked(frames: list[np.ndarray], expected: int) -> list[np.ndarray]:
    if len(frames) != expected:
        raise ValueError(f"returned {len(frames)} of {expected} wanted frames")
    for frame in frames:
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or 0 in frame.shape:
            raise ValueError(f"returned a frame of {frame.dtype} {frame.shape}, not (H, W, 3) uint8")
    return frames


def _decord(path: str) -> Opened:
    import decord

    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)

    def read(indices: list[int]) -> list[np.ndarray]:
        batch = reader.get_batch(indices).asnumpy()  # (n, H, W, 3) RGB, rotation applied
        return [np.ascontiguousarray(frame) for frame in batch]

    return Opened(len(reader), float(reader.get_avg_fps()), read)


def _pyav(path: str) -> Opened:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps, count = (float(rate) if rate else 0.0), stream.frames
        if not count:  # webm/mkv store no count: count the video packets (no decoding)
            count = sum(1 for packet in container.demux(stream) if packet.size)

    def read(indices: list[int]) -> list[np.ndarray]:
        wanted, out, seen = set(indices), {}, 0
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for i, frame in enumerate(container.decode(stream)):
                seen = i + 1
                if i in wanted:
                    out[i] = _upright(frame)
                if i >= indices[-1]:
                    break
        if len(out) < len(indices):
            raise ValueError(f"stream ended after {seen} frames; wanted frame {indices[-1]}")
        return [out[i] for i in indices]

    return Opened(count, fps, read)


def _upright(frame) -> np.ndarray:
    """A PyAV frame as RGB, turned by its display rotation (counter-clockwise degrees)."""
    return np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), int(frame.rotation or 0) // 90))


def _opencv(path: str) -> Opened:
    import cv2

    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise ValueError("OpenCV cannot open it")
    count, fps = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), float(capture.get(cv2.CAP_PROP_FPS))
    capture.release()

    def read(indices: list[int]) -> list[np.ndarray]:
        wanted, out = set(indices), {}
        capture = cv2.VideoCapture(path)  # orientation metadata is applied (CAP_PROP_ORIENTATION_AUTO)
        try:
            for i in range(indices[-1] + 1):
                if not capture.grab():
                    raise ValueError(f"stream ended after {i} frames; wanted frame {indices[-1]}")
                if i in wanted:
                    ok, bgr = capture.retrieve()
                    if not ok:
                        raise ValueError(f"frame {i} could not be decoded")
                    out[i] = np.ascontiguousarray(bgr[..., ::-1])  # BGR -> RGB
        finally:
            capture.release()
        return [out[i] for i in indices]

    return Opened(count, fps, read)


BACKENDS: dict[str, Callable[[str], Opened]] = {"decord": _decord, "pyav": _pyav, "opencv": _opencv}
PIP_NAMES = {"decord": "decord", "pyav": "av", "opencv": "opencv-python-headless"}


def decode_video_part(part: Part, role: str, settings: DecodeSettings) -> PartFrames:
    """Decode-table entry for role "video": the clips of a video file as frames, clip after clip.

    `info["clips"]` lists each clip's stride, first frame and length, in frame order, so a template
    can cut the frames back into clips. A plain Part gets LVM's default sampling, seeded by its URI.
    """
    clip = part if isinstance(part, ClipPart) else ClipPart(part.uri, part.data)
    local = part.data is None and not storage.is_remote(part.uri)
    local = local and not isinstance(localfs.os_path(part.uri), bytes)  # a percent-escaped name: read as bytes
    data = None if local else (part.data if part.data is not None else _read_remote(part.uri))
    request = VideoRequest(
        part.uri,
        part.uri,
        clip.key or part.uri,
        clip.spec,
        clip.seed,
        settings.image_size,
        settings.resize,
        tuple(clip.backends),
    )
    result = decode_video(data, part.uri, request, clip.timeout_s)
    frames = [Frame(pixels=result.frames[i], uri=part.uri, index=i, role=role) for c in result.clips for i in c.indices]
    info = {
        "n_frames": result.n_frames,
        "fps": result.fps,
        "width": result.width,
        "height": result.height,
        "backend": result.backend,
        "backend_errors": result.errors,
        "clips": [{"stride": c.stride, "start": c.indices[0], "length": len(c.indices)} for c in result.clips],
    }
    return PartFrames(frames, info)


def _read_remote(uri: str) -> bytes:
    try:
        return storage.read_bytes(uri)
    except OSError as err:
        raise ItemError(Reason.READ_ERROR, f"{uri}: cannot read ({err})") from err


CODECS = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9", ".avi": "mpeg4"}


def write_video(path: str, frames: list[np.ndarray], fps: int = 25, rotation: int = 0) -> None:
    """Encode RGB uint8 frames (all one even-sided size) to `path`; codec by extension (see CODECS).

    `rotation` (counter-clockwise degrees) is stored as display-matrix metadata, as phones do.
    Used by tests, benchmarks and sample corpora; needs PyAV.
    """
    import av

    ext = os.path.splitext(path)[1].lower()
    if ext not in CODECS:
        raise ValueError(f"{path}: cannot choose a codec for {ext!r}; use one of {', '.join(CODECS)}")
    height, width = frames[0].shape[:2]
    with av.open(path, "w") as container:
        stream = cast("av.VideoStream", container.add_stream(CODECS[ext], rate=fps))  # CODECS are all video codecs
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for pixels in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
