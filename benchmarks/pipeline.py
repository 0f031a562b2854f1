"""Throughput benchmarks of the whole job; wall-clock seconds, nothing is asserted.

`lvm-data bench pipeline` (`run_bench`): the Beam pipeline's images/s beside a plain in-process loop doing
the same decode + encode + write with the same tokenizer (lvm_data.job.loop), their ratio, and bytes per token.
Both run the same job end to end on the same corpus (copies of the sample photos): planning, tokenizer
load, decoding, encoding, Parquet + ledger + markers, manifest.

`python benchmarks/pipeline.py --gpu` (`run_ceiling`): DESIGN's "full pipeline on one GPU vs the compiled
encoder alone on that GPU >= 0.9". Over one corpus it times the decode (one process), the encoder alone on
the decoded frames (the job's setting: compiled bfloat16 on CUDA; and eager float32), and the pipeline on
the embedded runner over the same files, twice (all images, and the first `small`): the difference is the
pipeline's steady rate, without its start-up (model load, compile, worker processes), which is printed apart.

Command line:

    python benchmarks/pipeline.py [--tokenizer URI] [--images N] [beam flags]
        the pipeline beside a plain in-process loop (the same as `lvm-data bench pipeline`)
    python benchmarks/pipeline.py --gpu [beam flags]
        on a GPU machine: the LVM config's compiled bfloat16 encoder alone (the ceiling), eager float32, the
        pipeline on the embedded runner over the same images, its steady rate and the ratio (target >= 0.9);
        sized for 80-141 GB GPUs (H100, H200): add --batch-size 64 on a 24 GB one
    python benchmarks/pipeline.py --vs-encoder --tokenizer fixture-small --device cpu --images 64 --small 16 \
        --batch-size 16 --shard-size 8
        the same comparison with any settings (here: on this machine's CPU)

`--gpu` runs the embedded runner as `lvm-data run` does by default: one worker process whose executor
decodes in one child process per CPU core while its one model copy on the GPU encodes, batches spanning
units (lvm_data.job.executor). Weights of named configs are seeded random: they cost what trained weights cost
(their codes are all alike, so "identical codes" says little with them).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from benchmarks.tokenizer import NAMED_CONFIGS, random_checkpoint
from lvm_data import tokenizer as lvm_tokenizer
from lvm_data.job.config import batch_size_for, parse_job_text
from lvm_data.job.encoder import devices_for
from lvm_data.job.loop import LocalExecutor
from lvm_data.job.runs import Run, finish_run, open_run
from lvm_data.job.steps import Pending, prepare, read_items
from lvm_data.media.samples import photos
from lvm_data.sentences.base import sentence_id
from lvm_data.shards.reader import read_sentences
from lvm_data.shards.writer import ROW_GROUP_TOKENS, SentenceRow, ShardInfo, sentence_table, write_parquet_atomic
from lvm_data.testing import images_source, job_text
from lvm_data.tokenizer.tokenizer import float32_precision, resolve_device
from pipelines.beam_flags import unknown_arguments
from pipelines.tokenize import execute, run_job


@dataclass(frozen=True)
class PipelineBench:
    tokenizer: str
    images: int = 64
    shard_size: int = 32
    batch_size: int = 16
    device: str = "cpu"
    workdir: str | None = None
    repeat: int = 2
    beam_args: tuple[str, ...] = ()


def write_photos(folder: Path, count: int, jpeg: bool = False) -> list[Path]:
    """`count` files cycling through the sample photos (distinct names, real decode work each); with `jpeg`,
    each photo re-encoded once as an RGB JPEG (quality 90), the format of web-scale corpora."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [(p.stem + ".jpg", _jpeg_bytes(p)) if jpeg else (p.name, p.read_bytes()) for p in photos("all")]
    out = []
    for i in range(count):
        name, data = sources[i % len(sources)]
        out.append(folder / f"{i:06d}-{name}")
        out[-1].write_bytes(data)
    return out


def _jpeg_bytes(path: Path) -> bytes:
    buffer = io.BytesIO()
    with Image.open(path) as image:
        image.convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def run_bench(cfg: PipelineBench) -> dict:
    """Time the plain loop and the pipeline `cfg.repeat` times each, alternating which goes first; keep the best."""
    root = Path(cfg.workdir or tempfile.mkdtemp(prefix="lvm-bench-"))
    write_photos(root / "photos", cfg.images)
    warm = lvm_tokenizer.load(cfg.tokenizer, device=cfg.device, batch_size=cfg.batch_size)
    warm.encode(np.zeros((1, warm.image_size, warm.image_size, 3), np.uint8))  # one-time library start-up, untimed
    best = {"loop": float("inf"), "pipeline": float("inf")}
    manifests = {}
    for i in range(cfg.repeat):
        for kind in ("loop", "pipeline") if i % 2 == 0 else ("pipeline", "loop"):
            text = job_text(
                "bench",
                root / f"{kind}-{i}",
                cfg.tokenizer,
                [images_source("photos", root / "photos")],
                shard_size=cfg.shard_size,
                batch_size=cfg.batch_size,
                device=cfg.device,
            )
            start = time.perf_counter()
            manifests[kind] = (
                loop_job(text) if kind == "loop" else run_job(parse_job_text(text), None, list(cfg.beam_args))
            )
            best[kind] = min(best[kind], time.perf_counter() - start)
    images, pipe = manifests["pipeline"]["totals"]["images"], manifests["pipeline"]
    return {
        "images": images,
        "tokenizer": cfg.tokenizer,
        "runner": pipe["runner"],
        "device": cfg.device,
        "repeat": cfg.repeat,
        "pipeline_s": best["pipeline"],
        "loop_s": best["loop"],
        "pipeline_ips": images / best["pipeline"],
        "loop_ips": manifests["loop"]["totals"]["images"] / best["loop"],
        "ratio": best["loop"] / best["pipeline"],
        "same_rows": written_rows(root / "loop-0") == written_rows(root / "pipeline-0"),
        "bytes_per_token": pipe["sources"]["photos"]["sentences_bytes"] / max(1, pipe["totals"]["tokens"]),
        "bytes_per_token_at_scale": bytes_per_token_at_scale(root / "scale.parquet"),
        "workdir": str(root),
    }


def loop_job(text: str) -> dict:
    """The job as a plain loop: load its tokenizer, plan, process unit by unit, write the manifest."""
    job = parse_job_text(text)
    device = devices_for(job.device, job.tokenizer)[0]
    tokenizer = lvm_tokenizer.load(job.tokenizer, device=device, batch_size=batch_size_for(job, device))
    run = open_run(job, tokenizer)
    LocalExecutor(run, tokenizer).execute()
    return finish_run(run, "local loop")


def written_rows(out: Path) -> list:
    table = read_sentences(str(out), columns=["id", "tokens"])
    return sorted(zip(table["id"].to_pylist(), table["tokens"].to_pylist(), strict=True))


def bytes_per_token_at_scale(path: Path, rows: int = 2 * ROW_GROUP_TOKENS // 256, codebook: int = 8192) -> float:
    """Bytes/token of a single-image shard of two full row groups (8M tokens) of uniform random 13-bit codes (no
    structure to exploit: a worst case), with ids as templates make them (sentence_id) and a webdataset unit's URIs."""
    rng = np.random.default_rng(0)
    keys = [f"{i:09d}.jpg" for i in range(rows)]
    data = [
        SentenceRow(
            sentence_id("s", "single", [key], {}, []),
            "s",
            "single",
            "image",
            1,
            rng.integers(0, codebook, 256).astype(np.uint16),
            [(f"gs://corpus/laion/00042.tar#{key}", 0, "image")],
        )  # one tar per unit, as webdataset's
        for key in keys
    ]
    nbytes = write_parquet_atomic(str(path), sentence_table(data, ShardInfo("fp", codebook, 256, "h"), "s", "u"))
    return nbytes / (rows * 256)


def format_bench(r: dict) -> str:
    return "\n".join(
        [
            f"corpus: {r['images']} images (sample photos), tokenizer {r['tokenizer']} on {r['device']}; "
            f"best of {r['repeat']} runs each, end to end (plan, load, decode, encode, write, manifest)",
            f"plain in-process loop : {r['loop_ips']:8.2f} images/s  ({r['loop_s']:.1f} s)",
            f"pipeline              : {r['pipeline_ips']:8.2f} images/s  ({r['pipeline_s']:.1f} s, {r['runner']})",
            f"ratio pipeline / loop : {r['ratio']:8.2f}   (target >= 0.8)",
            f"identical rows        : {'yes' if r['same_rows'] else 'NO'}",
            f"bytes per token       : {r['bytes_per_token']:8.3f} in this run's files; "
            f"{r['bytes_per_token_at_scale']:.3f} for an 8M-token single-image shard of random 13-bit codes (<= 1.7)",
            f"outputs under {r['workdir']}",
        ]
    )


# --- the pipeline against the encoder alone (DESIGN: >= 0.9 on one GPU) ------------------------------------


@dataclass(frozen=True)
class CeilingBench:
    """What `run_ceiling` measures. `tokenizer`: a named config of benchmarks.tokenizer (seeded random
    weights, written once under the workdir so that the pipeline's workers load the same ones) or a location."""

    tokenizer: str = "lvm"
    images: int = 16384
    small: int = 2048  # the second pipeline run: its start-up is the same, so the difference is steady work
    batch_size: int = 256
    shard_size: int = 128
    device: str = "auto"
    dtype: str = "auto"
    compile: bool | str = "auto"
    warmup: int = 3  # untimed encoder batches before each timed pass (compilation, cuDNN autotuning)
    fp32_images: int = 2048  # images of the eager float32 passes
    jpeg: bool = True
    pipeline_warmup: bool = True  # one untimed pipeline first (inductor's compile cache, the page cache)
    workdir: str | None = None
    beam_args: tuple[str, ...] = ()


def tokenizer_location(name: str, root: Path) -> str:
    """A checkpoint every worker can load: a named config is written as an open-muse folder under `root`
    (config.json last, so a folder with it is complete); anything else is returned unchanged."""
    if name not in NAMED_CONFIGS:
        return name
    folder = root / f"tokenizer-{name}"
    if not (folder / "config.json").exists():
        checkpoint = random_checkpoint(name)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in checkpoint.state_dict.items()}, str(folder / "model.safetensors"))
        config = {"_class_name": "VQGANModel", **checkpoint.config.to_dict()}
        (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    return str(folder)


def decode_corpus(run: Run, clock=time.perf_counter) -> tuple[list[Pending], float]:
    """Every sentence the run builds, decoded in this process as the pipeline decodes it; and the seconds."""
    ctx = run.context
    settings, runtimes = ctx.settings(), {name: ctx.runtime(name) for name in run.plans}
    start, pendings = clock(), []
    for read_unit in run.read_units():
        rt = runtimes[read_unit.source]
        for ref in read_items(rt, read_unit, run.selections[read_unit.source]):
            pendings += prepare(rt, settings, [ref])[0]
    return pendings, clock() - start


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_batches(
    encode, frames: np.ndarray, batch: int, warmup: int, device: torch.device, clock=time.perf_counter
) -> tuple[float, np.ndarray]:
    """(seconds, codes) of `encode` over `frames` in batches of `batch`, after `warmup` untimed batches;
    the device is synchronized before each clock read."""
    for i in range(warmup):
        start = (i * batch) % len(frames)
        encode(frames[start : start + batch])
    synchronize(device)
    start = clock()
    codes = np.concatenate([encode(frames[s : s + batch]) for s in range(0, len(frames), batch)])
    synchronize(device)
    return clock() - start, codes


def tf32_allowed():
    """TF32 float32 matmuls and convolutions while the block runs (the setting LVM's eager fp32 figure implies)."""
    return float32_precision("tf32")


@torch.inference_mode()
def encode_tf32(tokenizer, images: np.ndarray) -> np.ndarray:
    """`tokenizer.encode` of one float32 batch without its IEEE switch: a throughput figure, codes may move."""
    x = torch.from_numpy(images).to(tokenizer.device).permute(0, 3, 1, 2).float() / 255.0  # (n, 3, S, S) in [0, 1]
    lo, hi = tokenizer.input_range
    x = (x * (hi - lo) + lo).contiguous()  # (n, 3, S, S) in the model's range
    with tf32_allowed():
        z = tokenizer.model.latents(x)  # (n, D, S/f, S/f)
        codes = tokenizer.model.quantize.nearest(z.float())  # (n, tokens)
    return codes.to(torch.int32).cpu().numpy().astype(np.uint16)


def encoder_passes(cfg: CeilingBench, location: str, frames: np.ndarray) -> tuple[list[dict], np.ndarray]:
    """The encoder alone over the decoded frames: as the job runs it (the ceiling; its codes are returned),
    then eager float32 on `fp32_images` of them (on CUDA with TF32 allowed, and IEEE as `dtype: float32` runs)."""
    job = lvm_tokenizer.load(
        location, device=cfg.device, dtype=cfg.dtype, batch_size=cfg.batch_size, compile=cfg.compile
    )
    eager = lvm_tokenizer.load(location, device=cfg.device, dtype="float32", batch_size=cfg.batch_size)
    some = frames[: cfg.fp32_images]
    passes = [(f"{'compiled' if job.compiled else 'eager'} {job.dtype} (the job's setting)", job.encode, frames)]
    if eager.device.type == "cuda":
        passes += [
            ("eager float32, TF32 allowed", lambda b: encode_tf32(eager, b), some),
            ("eager float32, IEEE (dtype: float32)", eager.encode, some),
        ]
    else:
        passes.append(("eager float32", eager.encode, some))
    figures, ceiling_codes = [], None
    for label, encode, images in passes:
        seconds, codes = time_batches(encode, images, cfg.batch_size, cfg.warmup, job.device)
        figures.append({"label": label, "images": len(images), "seconds": seconds, "ips": len(images) / seconds})
        ceiling_codes = codes if ceiling_codes is None else ceiling_codes
    assert ceiling_codes is not None  # passes starts with the job's pass
    return figures, ceiling_codes


def _ceiling_job(cfg: CeilingBench, root: Path, location: str, name: str, limit: int | None) -> str:
    top = {
        "shard_size": cfg.shard_size,
        "batch_size": cfg.batch_size,
        "device": cfg.device,
        "dtype": cfg.dtype,
        "compile": cfg.compile,
        **({"limit": limit} if limit else {}),
    }
    return job_text(name, root / name, location, [images_source("photos", root / "photos")], **top)


def pipeline_seconds(cfg: CeilingBench, text: str, clock=time.perf_counter) -> tuple[float, dict]:
    """Seconds of the job as `lvm-data run` does it (plan, pipeline, manifest)."""
    start = clock()
    job = parse_job_text(text)
    run = open_run(job, lvm_tokenizer.load(job.tokenizer, device="cpu", dtype=job.dtype))
    label = execute(run, list(cfg.beam_args))
    return clock() - start, finish_run(run, label)


def identical_sentences(out: Path, pendings: list[Pending], codes: np.ndarray) -> int:
    """How many of `pendings` the pipeline wrote with exactly the encoder-alone codes."""
    table = read_sentences(str(out), columns=["id", "tokens"])
    written = dict(zip(table["id"].to_pylist(), table["tokens"].to_pylist(), strict=True))
    same, start = 0, 0
    for p in pendings:
        same += written.get(p.sentence.id) == codes[start : start + p.n_images].reshape(-1).tolist()
        start += p.n_images
    return same


def run_ceiling(cfg: CeilingBench) -> dict:
    """Decode, the pipeline (warm-up, small, all) and the encoder passes over one corpus; see `format_ceiling`."""
    device = str(resolve_device(cfg.device))  # an explicit device that is missing fails here, with the fix
    root = Path(cfg.workdir or tempfile.mkdtemp(prefix="lvm-ceiling-"))
    write_photos(root / "photos", cfg.images, jpeg=cfg.jpeg)
    location = tokenizer_location(cfg.tokenizer, root)
    plan = open_run(
        parse_job_text(_ceiling_job(cfg, root, location, "decoded", None)), lvm_tokenizer.load(location, device="cpu")
    )
    pendings, decode_s = decode_corpus(plan)
    if cfg.pipeline_warmup:
        pipeline_seconds(cfg, _ceiling_job(cfg, root, location, "warmup", cfg.small))
    small_s, small = pipeline_seconds(cfg, _ceiling_job(cfg, root, location, "small", cfg.small))
    full_s, full = pipeline_seconds(cfg, _ceiling_job(cfg, root, location, "full", None))
    frames = np.concatenate([p.pixels() for p in pendings])  # (N, S, S, 3) uint8
    encoder, codes = encoder_passes(cfg, location, frames)
    images, extra = full["totals"]["images"], full["totals"]["images"] - small["totals"]["images"]
    steady = extra / (full_s - small_s) if extra > 0 and full_s > small_s else None
    return {
        "config": cfg,
        "tokenizer": location,
        "images": images,
        "small_images": small["totals"]["images"],
        "decode_ips": len(frames) / decode_s,
        "encoder": encoder,
        "runner": full["runner"],
        "manifest_device": full["tokenizer"]["device"],
        "full_s": full_s,
        "small_s": small_s,
        "steady_ips": steady,
        "startup_s": small_s - small["totals"]["images"] / steady if steady else None,
        "ratio": steady / encoder[0]["ips"] if steady else None,
        "identical": identical_sentences(root / "full", pendings, codes),
        "sentences": len(pendings),
        "device": device,
        "workdir": str(root),
    }


def format_ceiling(r: dict) -> str:
    cfg, top = r["config"], r["encoder"][0]["ips"]
    on_gpu = r["device"].startswith("cuda")
    device = r["device"] + (f" ({torch.cuda.get_device_name(torch.device(r['device']))})" if on_gpu else "")
    lines = [
        f"corpus: {r['images']} {'JPEG' if cfg.jpeg else 'sample'} photos; tokenizer {cfg.tokenizer} on {device}, "
        f"batch {cfg.batch_size}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads",
        f"decode + preprocess, one process : {r['decode_ips']:9.1f} images/s  "
        f"(feeding {top:,.0f} images/s takes {top / r['decode_ips']:.1f} such processes)",
    ]
    lines += [
        f"encoder alone, {e['label']:<37}: {e['ips']:9.1f} images/s  ({e['images']} images, "
        f"{cfg.warmup} warm-up batches untimed)"
        for e in r["encoder"]
    ]
    lines.append(
        f"pipeline, {r['runner']}: {r['images'] / r['full_s']:9.1f} images/s end to end "
        f"({r['images']} images in {r['full_s']:.1f} s; {r['small_images']} in {r['small_s']:.1f} s)"
    )
    if r["steady_ips"] is None:
        lines.append("pipeline steady rate: n/a (the two runs are within noise; use more --images)")
    else:
        lines += [
            f"pipeline steady rate (difference of the two runs): {r['steady_ips']:9.1f} images/s; "
            f"start-up {r['startup_s']:.1f} s per run (model load, compile, decoder processes)",
            f"ratio pipeline / encoder alone: {r['ratio']:6.2f}   (target >= 0.9)",
        ]
    lines += [
        f"identical codes, pipeline vs encoder alone: {r['identical']} of {r['sentences']} sentences; "
        f"manifest device: {r['manifest_device']}",
        f"outputs under {r['workdir']}",
    ]
    return "\n".join(lines)


GPU_PRESET = {
    "tokenizer": "lvm",
    "device": "cuda",
    "images": 16384,
    "small": 2048,
    "batch_size": 256,
    "shard_size": 128,
}


def parse(argv: list[str]) -> tuple[CeilingBench, None] | tuple[None, list[str]]:
    """(CeilingBench, None) for --gpu / --vs-encoder; (None, argv) for the pipeline-vs-loop bench."""
    if "--gpu" not in argv and "--vs-encoder" not in argv:
        return None, argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="LVM config on CUDA (the preset above)")
    parser.add_argument("--vs-encoder", action="store_true", help="the comparison with the settings given")
    for name in ("tokenizer", "device", "dtype", "workdir"):
        parser.add_argument(f"--{name}")
    for name in ("images", "small", "batch-size", "shard-size", "warmup", "fp32-images"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--compile", choices=["auto", "true", "false"])
    parser.add_argument("--png", action="store_true", help="copy the sample photos as they are (default: JPEG)")
    parser.add_argument("--no-pipeline-warmup", action="store_true")
    args, beam_args = parser.parse_known_args(argv)
    chosen = {k: v for k, v in vars(args).items() if v is not None and k not in ("gpu", "vs_encoder")}
    chosen["jpeg"] = not chosen.pop("png")
    chosen["pipeline_warmup"] = not chosen.pop("no_pipeline_warmup")
    if "compile" in chosen:
        chosen["compile"] = {"true": True, "false": False}.get(chosen["compile"], "auto")
    return CeilingBench(**{**(GPU_PRESET if args.gpu else {}), **chosen}, beam_args=tuple(beam_args)), None


def parse_pipeline_bench(argv: list[str]) -> PipelineBench:
    """The pipeline-vs-loop bench's settings (those of `lvm-data bench pipeline`); the other arguments go to Beam,
    which must know them."""
    defaults = PipelineBench("builtin:tiny")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--tokenizer", default=defaults.tokenizer)
    for name in ("images", "shard-size", "batch-size", "repeat"):
        parser.add_argument(f"--{name}", type=int, default=getattr(defaults, name.replace("-", "_")))
    parser.add_argument("--device", default=defaults.device)
    parser.add_argument("--workdir")
    args, beam_args = parser.parse_known_args(argv)
    unknown = unknown_arguments(beam_args)
    if unknown:
        parser.error(f"no such option: {unknown[0]} (neither an option of this command nor a Beam flag)")
    return PipelineBench(**vars(args), beam_args=tuple(beam_args))


def main(argv: list[str]) -> None:
    ceiling, rest = parse(argv)
    if ceiling is None:
        assert rest is not None  # parse gives the one or the other
        print(format_bench(run_bench(parse_pipeline_bench(rest))), flush=True)
        return

    try:
        resolve_device(ceiling.device)
    except RuntimeError as err:
        raise SystemExit(f"error: {err}") from err
    # warnings the embedded runner forwards from its worker processes, as `lvm-data run` quiets them
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)
    print(format_ceiling(run_ceiling(ceiling)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
