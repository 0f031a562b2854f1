"""Peak memory of a job against its size: the executor's memory is bounded by the frames in flight.

    python benchmarks/memory.py [--images 200 2000] [--tokenizer builtin:tiny] [--batch-size 32]
                                [--shard-size 100] [beam flags]

Runs `lvm-data run` on JPEG copies of the sample photos once per size, with the same settings, and
samples the resident memory every 50 ms: of the job's own process, and of its whole process tree (the
job and its decoder processes; shared pages of the tree count once per process, so the tree figure is an
upper bound). Prints each peak and the ratio of the largest job's to the smallest's (target <= 1.2).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss(pid: int) -> int:
    """Resident bytes of one process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return 0


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def peak_memory(command: list[str], interval: float = 0.05) -> tuple[int, int, float]:
    """(peak RSS of the process, peak RSS of its tree, seconds) of `command` run to completion."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    own = tree = 0
    while proc.poll() is None:
        mine = rss(proc.pid)
        own, tree = max(own, mine), max(tree, mine + sum(rss(p) for p in descendants(proc.pid)))
        time.sleep(interval)
    if proc.returncode != 0:
        assert proc.stderr is not None  # stderr=PIPE
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr.read().decode()[-3000:]}")
    return own, tree, time.perf_counter() - start


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--tokenizer", default="builtin:tiny")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--shard-size", type=int, default=100)
    parser.add_argument("--workdir")
    args, beam_args = parser.parse_known_args(argv)
    from benchmarks.pipeline import write_photos
    from lvm_data.testing import images_source, job_text

    root = Path(args.workdir or tempfile.mkdtemp(prefix="lvm-memory-"))
    write_photos(root / "photos", max(args.images), jpeg=True)
    results = []
    for n in args.images:
        folder = root / f"photos-{n}"
        folder.mkdir(exist_ok=True)
        for path in sorted((root / "photos").iterdir())[:n]:
            target = folder / path.name
            if not target.exists():
                target.symlink_to(path)
        job = root / f"job-{n}.yaml"
        job.write_text(
            job_text(
                f"m{n}",
                root / f"out-{n}",
                args.tokenizer,
                [images_source("photos", folder)],
                shard_size=args.shard_size,
                batch_size=args.batch_size,
            )
        )
        own, tree, seconds = peak_memory(
            [sys.executable, "-m", "lvm_data.cli", "run", str(job), "--no-progress", *beam_args]
        )
        results.append((n, own, tree))
        print(
            f"{n:6d} images: peak RSS {own / 2**20:7.1f} MiB (job process), {tree / 2**20:7.1f} MiB (with its "
            f"decoder processes); {seconds:.1f} s",
            flush=True,
        )
    (n0, own0, tree0), (n1, own1, tree1) = results[0], results[-1]
    print(f"ratio {n1} / {n0} images: {own1 / own0:.2f} (job process), {tree1 / tree0:.2f} (tree)   (target <= 1.2)")
    print(f"outputs under {root}")


if __name__ == "__main__":
    main(sys.argv[1:])
