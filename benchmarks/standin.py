"""`lvm-data bench standin`: does the pipeline keep a device busy? Measured on CPUs, with a device stand-in.

1. Decode capacity: the corpus (JPEG copies of the sample photos) decoded through the job's decode pool
   with one worker per core, nothing else running (warm workers; images/s).
2. RATE = `share` (default 0.7) x capacity: a device the CPUs can just keep up with.
3. The job end to end on the embedded runner (plan, JPEG files in, committed Parquet and manifest out) with
   the stand-in encoder `standin:RATE` (lvm_data.tokenizer.standin: it sleeps batch / RATE seconds, no
   CPU). If decode, encode and write overlap, the job runs at RATE: the ratio pipeline / RATE is the figure
   (DESIGN: >= 0.9). Stages that run one after another give about 1 / (1/decode + 1/RATE) instead. A second
   run on the first `small` images gives the steady rate (the difference cancels start-up and tail).
4. For comparison, the plain in-process loop (lvm_data.job.loop: unit after unit, stage after stage) with
   the same stand-in, and with `baseline_tree` the pipeline of another checkout (e.g. main before a
   change) run the same way in a subprocess, the stand-in injected into its tokenizer loader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.pipeline import loop_job, write_photos, written_rows
from lvm_data import tokenizer as lvm_tokenizer
from lvm_data.job.config import parse_job_text
from lvm_data.job.decoding import DecodePool, DecodeTask
from lvm_data.job.executor import auto_workers
from lvm_data.job.runs import open_run
from lvm_data.job.steps import unit_groups
from lvm_data.testing import images_source, job_text
from lvm_data.tokenizer import standin
from pipelines.tokenize import run_job


@dataclass(frozen=True)
class StandInBench:
    images: int = 3000  # ~15 s at 200 images/s: the ~1 s of start-up and tail weigh little
    small: int = 1000  # a second pipeline run on the first `small` images: the difference is the steady rate
    share: float = 0.7  # RATE as a share of the decode capacity
    rate: float | None = None  # or RATE itself
    batch_size: int = 32
    shard_size: int = 100
    workers: int | None = None  # decode workers (default: one per core)
    loop: bool = True
    baseline_tree: str | None = None
    workdir: str | None = None
    beam_args: tuple[str, ...] = ()


def _job(cfg: StandInBench, root: Path, name: str, rate: float, limit: int | None = None) -> str:
    extra = {"decode_workers": cfg.workers} if cfg.workers else {}
    return job_text(
        name,
        root / name,
        f"standin:{rate:g}",
        [images_source("photos", root / "photos")],
        shard_size=cfg.shard_size,
        batch_size=cfg.batch_size,
        device="cpu",
        **({"limit": limit} if limit else {}),
        **extra,
    )


def decode_capacity(text: str, workers: int) -> float:
    """Images/s of the job's decode pool with `workers` workers, warm, doing nothing else."""
    run = open_run(parse_job_text(text), lvm_tokenizer.load("standin:1"))
    ctx = run.context
    tasks = []
    for work in run.plain_units():
        groups = [tuple(g) for g in unit_groups(ctx.runtime(work.source), work, run.selections[work.source])]
        tasks += [DecodeTask(work.source, tuple(groups[i : i + 8])) for i in range(0, len(groups), 8)]
    pool = DecodePool(ctx, workers)
    try:
        _drain(pool, tasks[:workers])  # starts the worker processes, untimed
        start = time.perf_counter()
        images = _drain(pool, tasks)
        return images / (time.perf_counter() - start)
    finally:
        pool.close()


def _drain(pool: DecodePool, tasks: list[DecodeTask]) -> int:
    done, lock, images = threading.Semaphore(0), threading.Lock(), [0]

    def finished(result):
        with lock:
            images[0] += sum(p.n_images for p in result.pendings) if not isinstance(result, Exception) else 0
        done.release()

    for task in tasks:
        pool.submit(task, finished)
    for _ in tasks:
        done.acquire()
    return images[0]


def _timed(fn) -> tuple[float, dict]:
    start = time.perf_counter()
    manifest = fn()
    return time.perf_counter() - start, manifest


BASELINE = """
import importlib.util, json, sys, time
tree, standin_file, job_file = sys.argv[1:4]
spec = importlib.util.spec_from_file_location("lvm_standin", standin_file)
standin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(standin)
import lvm_data.tokenizer as tokenizer
original = tokenizer.load
def load(uri, *args, **kwargs):
    if uri.startswith(standin.PREFIX):
        return standin.StandInTokenizer(uri, batch_size=kwargs.get("batch_size", 32))
    return original(uri, *args, **kwargs)
tokenizer.load = load
try:
    from lvm_data.job.config import parse_job_text
except ImportError:  # checkouts from before lvm_data/job/
    from lvm_data.config import parse_job_text
from pipelines.tokenize import run_job
text = open(job_file).read()
start = time.perf_counter()
manifest = run_job(parse_job_text(text), None, [])
print(json.dumps({"seconds": time.perf_counter() - start, "images": manifest["totals"]["images"],
                  "runner": manifest["runner"]}))
"""


def run_baseline(tree: str, text: str, root: Path) -> dict:
    """The job with another checkout's pipeline, in a subprocess whose imports come from `tree`."""
    job_file = root / "baseline.yaml"
    job_file.write_text(text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(tree).resolve()), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", BASELINE, tree, standin.__file__, str(job_file)],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the baseline pipeline in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_standin(cfg: StandInBench) -> dict:
    root = Path(cfg.workdir or tempfile.mkdtemp(prefix="lvm-standin-"))
    write_photos(root / "photos", cfg.images, jpeg=True)
    workers = cfg.workers or auto_workers()
    capacity = decode_capacity(_job(cfg, root, "capacity", 1.0), workers)
    rate = cfg.rate or cfg.share * capacity
    text = _job(cfg, root, "pipeline", rate)
    seconds, manifest = _timed(lambda: run_job(parse_job_text(text), None, list(cfg.beam_args)))
    images = manifest["totals"]["images"]
    out = {
        "images": images,
        "workers": workers,
        "cpus": auto_workers(),
        "capacity_ips": capacity,
        "rate": rate,
        "share": rate / capacity,
        "pipeline_s": seconds,
        "pipeline_ips": images / seconds,
        "ratio": images / seconds / rate,
        "runner": manifest["runner"],
        "workdir": str(root),
    }
    if 0 < cfg.small < images:
        small_text = _job(cfg, root, "small", rate, limit=cfg.small)
        small_s, small = _timed(lambda: run_job(parse_job_text(small_text), None, list(cfg.beam_args)))
        extra = images - small["totals"]["images"]
        steady = extra / (seconds - small_s) if seconds > small_s else None
        out |= {
            "small": small["totals"]["images"],
            "small_s": small_s,
            "steady_ips": steady,
            "steady_ratio": steady / rate if steady else None,
        }
    if cfg.loop:
        loop_text = _job(cfg, root, "loop", rate)
        loop_s, loop = _timed(lambda: loop_job(loop_text))
        out |= {
            "loop_ips": loop["totals"]["images"] / loop_s,
            "loop_ratio": loop["totals"]["images"] / loop_s / rate,
            "same_rows": written_rows(root / "loop") == written_rows(root / "pipeline"),
        }
    if cfg.baseline_tree:
        base = run_baseline(cfg.baseline_tree, _job(cfg, root, "baseline", rate), root)
        out |= {
            "baseline_tree": cfg.baseline_tree,
            "baseline_ips": base["images"] / base["seconds"],
            "baseline_ratio": base["images"] / base["seconds"] / rate,
            "baseline_runner": base["runner"],
        }
    return out


def format_standin(r: dict) -> str:
    lines = [
        f"corpus: {r['images']} JPEG photos -> committed Parquet; {r['cpus']} CPUs",
        f"decode capacity, {r['workers']} decode workers   : {r['capacity_ips']:8.1f} images/s",
        f"device stand-in RATE                 : {r['rate']:8.1f} images/s ({r['share']:.2f} of capacity)",
        f"pipeline, {r['runner']:<27}: {r['pipeline_ips']:8.1f} images/s end to end "
        f"({r['pipeline_s']:.1f} s)   ratio to RATE {r['ratio']:.2f} (target >= 0.9)",
    ]
    if r.get("steady_ips"):
        lines.append(
            f"pipeline steady rate (minus a {r['small']}-image run, {r['small_s']:.1f} s): "
            f"{r['steady_ips']:8.1f} images/s   ratio to RATE {r['steady_ratio']:.2f}"
        )
    if "loop_ips" in r:
        lines.append(
            f"plain loop, stage after stage        : {r['loop_ips']:8.1f} images/s   ratio to RATE "
            f"{r['loop_ratio']:.2f}; identical rows: {'yes' if r['same_rows'] else 'NO'}"
        )
    if "baseline_ips" in r:
        lines.append(
            f"baseline pipeline ({r['baseline_tree']}, {r['baseline_runner']}): {r['baseline_ips']:8.1f} "
            f"images/s   ratio to RATE {r['baseline_ratio']:.2f}"
        )
    lines.append(f"outputs under {r['workdir']}")
    return "\n".join(lines)
