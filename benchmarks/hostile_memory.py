"""Peak memory of a job fed hostile inputs, under an optional address-space limit: memory bounded by design.

    python benchmarks/hostile_memory.py [--rgba-side 6000] [--member-mib 512] [--file-mib 1024]
                                        [--max-item-mib 64] [--max-pixels 40000000] [--headroom-mib N] [--json]
    PYTHONPATH=OTHER_CHECKOUT python benchmarks/hostile_memory.py ...   # the same job on another checkout

Writes, in --workdir (a temporary folder by default): an `images` folder with two real photos, an RGBA PNG of
--rgba-side squared pixels (under max_pixels: it must come out ok), a gray PNG over max_pixels and a sparse file
of --file-mib MiB named .png; and a gzip'ed webdataset tar: a photo, a member of --member-mib MiB of zeros (its
header says so), another photo. Then runs the job (`pipelines.tokenize.run_job`, the 32-pixel test tokenizer of
lvm_data.testing.write_tiny_checkpoint, so that the encoder's own working memory stays small; decode
in threads, so that the whole job is one process) in a child process. With --headroom-mib the child's RLIMIT_AS
is set, once torch, Beam and the tokenizer are loaded, to its address space then plus the headroom (torch alone
maps ~2 GiB of address space, so an absolute limit would measure the machine's libraries, not the job). Prints the
child's peak RSS (getrusage RUSAGE_CHILDREN: the largest process, the job here), its RSS once loaded, its exit
status and every ledger row. Expected: the photos and the RGBA image ok, the gray image too_large, the sparse file and
the tar member file_too_large. A checkout without `max_item_bytes` runs the same job without that field.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lvm_data.testing import ZeroStream

EXPECTED = {
    "photo-0.jpg": "ok",
    "photo-1.png": "ok",
    "rgba.png": "ok",
    "over-max-pixels.png": "too_large",
    "sparse.png": "file_too_large",
    "000000": "ok",
    "000001": "file_too_large",
    "000002": "ok",
}

CHILD = """
import json, resource, sys
from pathlib import Path
from lvm_data import tokenizer
from lvm_data.job.config import parse_job_text
from lvm_data.testing import write_tiny_checkpoint
from pipelines.tokenize import run_job

def status():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {k: int(fields[k].split()[0]) * 1024 for k in ("VmSize", "VmPeak", "VmRSS", "VmHWM")}

if not (Path(sys.argv[3]) / "config.json").exists():
    write_tiny_checkpoint(sys.argv[3])
tokenizer.load(sys.argv[3], device="cpu")  # torch, Beam and the model are mapped before the limit is set
before, headroom = status(), int(sys.argv[2])
if headroom:
    limit = before["VmSize"] + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
text = open(sys.argv[1]).read()
run_job(parse_job_text(text), text, [])
after = status()
print(json.dumps({"vm_at_start": before["VmSize"], "rss_at_start": before["VmRSS"], "vm_peak": after["VmPeak"],
                  "rss_peak": after["VmHWM"]}))
"""


def rgba_png(path: Path, side: int) -> None:
    """A side x side RGBA PNG with every alpha value (gradients: cheap to encode, real compositing work)."""
    ramp = (np.arange(side, dtype=np.uint32) * 255 // max(1, side - 1)).astype(np.uint8)
    pixels = np.empty((side, side, 4), np.uint8)
    pixels[..., 0] = ramp[None, :]
    pixels[..., 1] = ramp[:, None]
    pixels[..., 2] = 128
    pixels[..., 3] = ramp[::-1][None, :]
    Image.fromarray(pixels, "RGBA").save(path, compress_level=1)


def write_inputs(root: Path, rgba_side: int, member_mib: int, file_mib: int, max_pixels: int) -> tuple[Path, Path]:
    """(images folder, tar) of the hostile corpus (see the module docstring)."""
    from lvm_data.media.samples import photos

    jpeg, png = (next(p for p in photos("all") if p.suffix == s) for s in (".jpg", ".png"))
    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "photo-0.jpg").write_bytes(jpeg.read_bytes())
    (folder / "photo-1.png").write_bytes(png.read_bytes())
    rgba_png(folder / "rgba.png", rgba_side)
    width = 4096
    Image.new("L", (width, max_pixels // width + 1)).save(folder / "over-max-pixels.png")
    with open(folder / "sparse.png", "wb") as f:
        f.truncate(file_mib * 2**20)  # no disk, no time: a hole
    shard = root / "shard.tar"  # gzip'ed: tarfile reads it as `r|*`
    with gzip.open(shard, "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        for name, data in (("000000.jpg", jpeg.read_bytes()), ("000001.png", None), ("000002.png", png.read_bytes())):
            info = tarfile.TarInfo(name)
            info.size = member_mib * 2**20 if data is None else len(data)
            tar.addfile(info, io.BufferedReader(ZeroStream(info.size), 2**20) if data is None else io.BytesIO(data))
    return folder, shard


def job_file(root: Path, folder: Path, shard: Path, max_pixels: int, max_item_bytes: int) -> Path:
    from lvm_data.job.config import JobConfig
    from lvm_data.testing import images_source, job_text

    tars = {"name": "tars", "input": {"format": "webdataset", "paths": [str(shard)]}, "template": "single"}
    top = {"max_pixels": max_pixels, "decode_pool": "threads", "decode_workers": 1, "shard_size": 8}
    if "max_item_bytes" in JobConfig.__dataclass_fields__:
        top["max_item_bytes"] = max_item_bytes
    path = root / "job.yaml"
    path.write_text(job_text("hostile", root / "out", root / "tiny", [images_source("files", folder), tars], **top))
    return path


def run_limited(job: Path, headroom_bytes: int, timeout_s: float = 600) -> dict:
    """Run the job in a child process whose RLIMIT_AS is its address space once imports and the tokenizer are
    loaded plus `headroom_bytes` (0: no limit): exit status, peak RSS, the figures the child measured.

    The child gets MALLOC_ARENA_MAX=2 and OMP_NUM_THREADS=2, so that neither glibc's per-thread arenas (64 MiB of
    address space each, up to 8 per core) nor torch's per-core thread stacks make the limit depend on the machine.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(job), str(headroom_bytes), str(job.parent / "tiny")],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=job.parent,
        env=env,
    )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    lines = proc.stdout.strip().splitlines()
    measured = json.loads(lines[-1]) if proc.returncode == 0 and lines else {}
    mib = {f"{k.replace('_at_', '_')}_mib": round(v / 2**20) for k, v in measured.items()}
    return {
        "returncode": proc.returncode,
        "peak_rss_mib": round(peak / 2**20),
        "earlier_children": before > 0,
        "headroom_mib": headroom_bytes // 2**20,
        **mib,
        "seconds": round(time.perf_counter() - started, 1),
        "stderr_tail": proc.stderr[-3000:],
    }


def ledger_rows(out: Path) -> dict[str, list[str]]:
    """Ledger rows by short name (file name, or tar sample key): [status, reason, detail]."""
    from lvm_data.shards.reader import read_ledger

    if not (out / "manifest.json").exists():
        return {}
    table = read_ledger(str(out)).to_pylist()
    return {r["key"].rsplit("/", 1)[-1].rsplit("#", 1)[-1]: [r["status"], r["reason"], r["detail"]] for r in table}


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir")
    parser.add_argument("--rgba-side", type=int, default=6000)
    parser.add_argument("--member-mib", type=int, default=512)
    parser.add_argument("--file-mib", type=int, default=1024)
    parser.add_argument("--max-item-mib", type=int, default=64)
    parser.add_argument("--max-pixels", type=int, default=40_000_000)
    parser.add_argument(
        "--headroom-mib",
        type=int,
        default=0,
        help="RLIMIT_AS of the job process: its address space after imports plus this (0: no limit)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    if args.rgba_side**2 > args.max_pixels:
        parser.error(f"--rgba-side {args.rgba_side} is over --max-pixels {args.max_pixels}: it would be too_large")
    root = Path(args.workdir or tempfile.mkdtemp(prefix="lvm-hostile-"))
    folder, shard = write_inputs(root, args.rgba_side, args.member_mib, args.file_mib, args.max_pixels)
    job = job_file(root, folder, shard, args.max_pixels, args.max_item_mib * 2**20)
    result = run_limited(job, args.headroom_mib * 2**20)
    result["ledger"] = ledger_rows(root / "out")
    result["expected"] = EXPECTED
    result["matches"] = {k: v[1] for k, v in result["ledger"].items()} == EXPECTED
    if args.json:
        print(json.dumps(result))
        return result
    limit = f"RLIMIT_AS at its start + {args.headroom_mib} MiB" if args.headroom_mib else "no memory limit"
    print(
        f"hostile job ({limit}): exit {result['returncode']}, peak RSS {result['peak_rss_mib']} MiB "
        f"({result.get('rss_start_mib', '?')} MiB once loaded), {result['seconds']} s; RGBA {args.rgba_side}^2 = "
        f"{args.rgba_side**2 / 1e6:.0f} Mpx, tar member {args.member_mib} MiB, file {args.file_mib} MiB"
    )
    for name in EXPECTED:
        status, reason, detail = result["ledger"].get(name, ["-", "-", "no ledger row"])
        print(f"  {name:22s} expected {EXPECTED[name]:15s} got {status:8s} {reason:15s} {detail[:90]}")
    if result["returncode"]:
        print(result["stderr_tail"][-1500:])
    print(f"inputs and output under {root}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
