import os
import time

import numpy as np
import pytest

from lvm_data.items import ItemRef, Part
from lvm_data.media.clips import ClipSpec
from lvm_data.media.contract import DecodeSettings
from lvm_data.media.decode import decode_item
from lvm_data.media.isolate import IsolatedWorker
from lvm_data.media.parts import ClipPart
from lvm_data.media.resize import resize
from lvm_data.media.samples import videos
from lvm_data.media.video import Opened, VideoRequest, decode_video, read_clips, write_video
from lvm_data.outcomes import ItemError, Reason

BACKENDS = ("decord", "pyav", "opencv")


def pattern(n, height=48, width=64):
    """Frames with a moving white block over a colour ramp: every frame differs, colours are known."""
    frames = []
    for i in range(n):
        f = np.zeros((height, width, 3), np.uint8)
        f[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None]
        f[..., 2] = 40
        top = (i * 3) % (height - 12)
        f[top : top + 12, 8:24] = 255
        frames.append(f)
    return frames


def request(path, spec, backends=BACKENDS, size=64, key="k"):
    return VideoRequest(str(path), str(path), key, spec, 0, size, "squash", tuple(backends))


@pytest.fixture(scope="module")
def worker():
    with IsolatedWorker() as w:
        yield w


def failing_backend(path):
    raise RuntimeError("this backend always fails")


def unreadable_backend(path):
    def read(indices):
        raise OSError("damaged packet")

    return Opened(10, 25.0, read)


def crashing_backend(path):
    os.abort()


def hanging_backend(path):
    time.sleep(60)


_OPENED: list[str] = []  # files this process's history_backend opened


def history_backend(path):
    """A decoder with process state, as decord is: fails a 'damaged' file once it has opened another file."""
    from lvm_data.media.video import BACKENDS as REAL

    earlier = [p for p in _OPENED if "damaged" not in p]
    _OPENED.append(path)
    if "damaged" in path and earlier:
        raise RuntimeError(f"state left by {earlier[0]}")
    return REAL["pyav"](path)


def test_backends_agree_on_a_real_video():
    path = videos()[2]  # carphone_pristine.mp4: 120 frames, 176x144, h264
    spec = ClipSpec(frames=16, strides=(4,))
    results = {b: read_clips(request(path, spec, (b,))) for b in BACKENDS}
    ref = results["decord"]
    assert ref.n_frames == 120 and abs(ref.fps - 29.97) < 0.01 and (ref.width, ref.height) == (176, 144)
    for backend, result in results.items():
        assert result.backend == backend and result.clips == ref.clips
        for i, frame in result.frames.items():
            assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
            assert np.abs(frame.astype(int) - ref.frames[i]).mean() < 2.0


def test_real_video_too_short_for_lvm_strides(worker):
    path = videos()[2]  # 120 frames < 121 needed at stride 8
    with pytest.raises(ItemError) as err:
        decode_video(None, str(path), request(path, ClipSpec(fit="skip")), worker=worker)
    assert err.value.reason is Reason.TOO_SHORT and "120 frames" in err.value.detail
    fitted = decode_video(None, str(path), request(path, ClipSpec()), worker=worker)  # LVM: stride 119 // 15 = 7
    assert [c.stride for c in fitted.clips] == [7]


@pytest.mark.parametrize("ext", [".mp4", ".webm", ".mkv", ".avi", ".mov"])
def test_every_container_decodes_to_its_frames(tmp_path, ext):
    frames = pattern(20)
    path = tmp_path / f"clip{ext}"
    with IsolatedWorker() as fresh:  # decord, once imported, breaks PyAV's VP8/VP9 encoders in the same process
        fresh.call(write_video, str(path), frames, timeout_s=60)
    result = read_clips(request(path, ClipSpec(frames=4, strides=(5,), offset="start"), size=64))
    assert result.n_frames == 20 and [c.indices for c in result.clips] == [(0, 5, 10, 15)]
    for i in (0, 5, 10, 15):
        expected = resize(frames[i], 64)
        assert np.abs(result.frames[i].astype(int) - expected).mean() < 12, ext


@pytest.mark.parametrize("rotation", [90, 180, -90])
@pytest.mark.parametrize("backend", BACKENDS)
def test_rotation_metadata_is_honoured(tmp_path, rotation, backend):
    frames = pattern(8, height=32, width=64)
    path = tmp_path / "phone.mp4"
    write_video(str(path), frames, rotation=rotation)
    result = read_clips(
        VideoRequest(
            str(path), "phone.mp4", "k", ClipSpec(frames=2, strides=(1,), offset="start"), 0, 32, "pad", (backend,)
        )
    )
    upright = np.rot90(frames[0], rotation // 90)  # display = stored frame turned counter-clockwise
    expected = resize(np.ascontiguousarray(upright), 32, "pad")
    assert result.width == upright.shape[1] and result.height == upright.shape[0]
    assert np.abs(result.frames[0].astype(int) - expected).mean() < 10


def test_opencv_frames_are_rgb_not_bgr(tmp_path):
    red = [np.full((32, 32, 3), (220, 20, 20), np.uint8) for _ in range(4)]
    write_video(str(tmp_path / "red.mp4"), red)
    for backend in BACKENDS:
        frame = read_clips(request(tmp_path / "red.mp4", ClipSpec(frames=2, strides=(1,)), (backend,))).frames
        pixel = next(iter(frame.values())).reshape(-1, 3).mean(axis=0)
        assert pixel[0] > 150 and pixel[2] < 80, backend


@pytest.mark.parametrize("n", [1, 15])
def test_videos_shorter_than_a_clip_are_too_short(tmp_path, worker, n):
    path = tmp_path / f"short{n}.mp4"
    write_video(str(path), pattern(n))
    with pytest.raises(ItemError) as err:
        decode_video(None, str(path), request(path, ClipSpec(frames=16, strides=(1,))), worker=worker)
    assert err.value.reason is Reason.TOO_SHORT and f"{n} frames" in err.value.detail


def test_a_corrupt_middle_fails_every_backend_with_decode_error(tmp_path, worker):
    path = tmp_path / "full.mp4"
    write_video(str(path), pattern(200))
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4000] = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    (tmp_path / "corrupt.mp4").write_bytes(bytes(data))
    with pytest.raises(ItemError) as err:
        decode_video(
            None,
            str(tmp_path / "corrupt.mp4"),
            request(tmp_path / "corrupt.mp4", ClipSpec(strides=(8,))),
            worker=worker,
        )
    assert err.value.reason is Reason.DECODE_ERROR
    assert all(f"{b}:" in err.value.detail for b in BACKENDS)


def test_decord_is_not_given_a_file_another_backend_opened_but_could_not_read(tmp_path):
    """On damaged data decord's answer depends on timing; files the others cannot even open still reach it."""
    write_video(str(tmp_path / "v.mp4"), pattern(10))
    spec = ClipSpec(frames=4, strides=(2,))
    with pytest.raises(ItemError) as err:
        read_clips(request(tmp_path / "v.mp4", spec, (unreadable_backend, "decord")))
    assert "unreadable_backend: OSError" in err.value.detail
    assert "decord: not tried on damaged data" in err.value.detail
    result = read_clips(request(tmp_path / "v.mp4", spec, (failing_backend, "decord")))
    assert result.backend == "decord" and "always fails" in result.errors[0]


def test_not_a_video_and_empty_files(tmp_path, worker):
    (tmp_path / "notes.mp4").write_bytes(b"these are not the frames you are looking for" * 50)
    with pytest.raises(ItemError) as err:
        decode_video(None, str(tmp_path / "notes.mp4"), request(tmp_path / "notes.mp4", ClipSpec()), worker=worker)
    assert err.value.reason is Reason.NOT_MEDIA
    with pytest.raises(ItemError) as err:
        decode_video(b"", "empty.mp4", request("empty.mp4", ClipSpec()), worker=worker)
    assert err.value.reason is Reason.EMPTY_FILE


def test_fallback_to_the_next_backend_is_recorded(tmp_path):
    write_video(str(tmp_path / "v.mp4"), pattern(10))
    result = read_clips(request(tmp_path / "v.mp4", ClipSpec(frames=4, strides=(2,)), (failing_backend, "pyav")))
    assert result.backend == "pyav" and "always fails" in result.errors[0]


@pytest.mark.parametrize("fallback", [("opencv",), ()])
def test_a_file_a_used_worker_fails_is_decoded_again_in_a_fresh_one(tmp_path, fallback):
    """The outcome must not depend on which files the worker decoded before (so on the worker count)."""
    for name in ("first.mp4", "damaged.mp4"):
        write_video(str(tmp_path / name), pattern(10))
    backends = (history_backend, *fallback)
    spec = ClipSpec(frames=4, strides=(2,))
    with IsolatedWorker() as alone:
        fresh = decode_video(
            None, str(tmp_path / "damaged.mp4"), request(tmp_path / "damaged.mp4", spec, backends), worker=alone
        )
    with IsolatedWorker() as used:
        decode_video(None, str(tmp_path / "first.mp4"), request(tmp_path / "first.mp4", spec, backends), worker=used)
        again = decode_video(
            None, str(tmp_path / "damaged.mp4"), request(tmp_path / "damaged.mp4", spec, backends), worker=used
        )
    assert fresh.backend == again.backend == "history_backend" and not again.errors
    assert [c.indices for c in again.clips] == [c.indices for c in fresh.clips]


def test_a_crashing_decoder_becomes_decoder_crash_not_a_dead_caller(tmp_path, worker):
    write_video(str(tmp_path / "v.mp4"), pattern(10))
    with pytest.raises(ItemError) as err:
        decode_video(
            None, str(tmp_path / "v.mp4"), request(tmp_path / "v.mp4", ClipSpec(), (crashing_backend,)), worker=worker
        )
    assert err.value.reason is Reason.DECODER_CRASH and "SIGABRT" in err.value.detail
    ok = decode_video(
        None, str(tmp_path / "v.mp4"), request(tmp_path / "v.mp4", ClipSpec(frames=4, strides=(2,))), worker=worker
    )
    assert ok.clips


def test_a_hanging_decoder_becomes_timeout(tmp_path, worker):
    write_video(str(tmp_path / "v.mp4"), pattern(10))
    with pytest.raises(ItemError) as err:
        decode_video(
            None,
            str(tmp_path / "v.mp4"),
            request(tmp_path / "v.mp4", ClipSpec(), (hanging_backend,)),
            timeout_s=1.0,
            worker=worker,
        )
    assert err.value.reason is Reason.TIMEOUT


def test_decode_table_entry_with_inline_bytes(tmp_path):
    write_video(str(tmp_path / "v.mkv"), pattern(24))
    part = ClipPart(
        "tar://shard-0/v.mkv",
        (tmp_path / "v.mkv").read_bytes(),
        spec=ClipSpec(frames=4, strides=(3,), offset="start"),
        key="v",
    )
    item = decode_item(ItemRef("s", "v", "000000", {"video": part}), DecodeSettings(image_size=32))
    clips = item.info["video"]["clips"]
    assert [c["start"] for c in clips] == [0, 12] and all(c["length"] == 4 for c in clips)
    assert [f.index for f in item.frames] == [0, 3, 6, 9, 12, 15, 18, 21]
    assert all(f.pixels.shape == (32, 32, 3) and f.role == "video" and f.uri == part.uri for f in item.frames)


def test_a_plain_video_part_gets_lvm_defaults():
    item = decode_item(
        ItemRef("s", "bikes", "000000", {"video": Part(str(videos()[0]))}), DecodeSettings(image_size=32)
    )
    strides = [c["stride"] for c in item.info["video"]["clips"]]  # 250 frames: stride 24 becomes 249 // 15 = 16
    assert strides.count(8) == 2 and strides.count(12) == 1 and strides.count(16) == 1 and len(item.frames) == 64


def test_at_the_item_boundary_a_crash_and_a_hang_are_outcomes(tmp_path):
    from lvm_data.job.steps import decode_guarded

    write_video(str(tmp_path / "v.mp4"), pattern(10))
    cases = ((crashing_backend, Reason.DECODER_CRASH, 30.0), (hanging_backend, Reason.TIMEOUT, 1.0))
    for backend, reason, timeout in cases:
        part = ClipPart(str(tmp_path / "v.mp4"), key="v", backends=(backend,), timeout_s=timeout)
        outcome = decode_guarded(ItemRef("s", "v", "u", {"video": part}), DecodeSettings(image_size=16))
        assert outcome.reason is reason and outcome.status.value == "failed"


def memory_hungry_backend(path):
    def read(indices):
        raise MemoryError("cannot allocate 40 GiB of frames")

    return Opened(10, 25.0, read)


def test_a_decoder_out_of_memory_is_an_out_of_memory_outcome(tmp_path):
    """In the isolated decoder process, with another backend to fall back to: the item's memory, not the backend."""
    from lvm_data.job.steps import decode_guarded

    write_video(str(tmp_path / "v.mp4"), pattern(10))
    part = ClipPart(
        str(tmp_path / "v.mp4"),
        spec=ClipSpec(frames=4, strides=(2,)),
        key="v",
        backends=(memory_hungry_backend, "pyav"),
    )
    outcome = decode_guarded(ItemRef("s", "v", "u", {"video": part}), DecodeSettings(image_size=16))
    assert (outcome.status.value, outcome.reason) == ("failed", Reason.OUT_OF_MEMORY)
    assert outcome.detail.startswith(
        f"{tmp_path / 'v.mp4'}: no memory to decode item v (MemoryError in the decoder process at test_video.py:"
    )
    assert "40 GiB of frames" in outcome.detail and "lower max_pixels or decode_workers" in outcome.detail
