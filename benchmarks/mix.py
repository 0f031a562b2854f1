"""Benchmark `lvm-data mix`: tokens/s on the embedded runner beside a plain pyarrow read-and-write of the same
rows, their ratio, and the mix output's bytes per token (target <= 1.7).

    python benchmarks/mix.py                         # 3 parts, ~10M tokens of random 13-bit codes
    python benchmarks/mix.py --scale 0.2 --workers 2  # smaller; two worker processes

The inputs are job outputs written by lvm-data's own writer (256 tokens per image, codebook 8192): single
images, 2-image pairs and 16-frame clips. The mix takes them by weights that subsample one part and repeat
another. The plain side reads every selected sentence file's rows with pyarrow and writes them back out as one
Parquet file per input file (no selection, split, shuffle or placement): the floor of moving those bytes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from lvm_data.mix.config import parse_mix
from lvm_data.sentences.base import sentence_id
from lvm_data.shards.writer import SentenceRow, ShardInfo, UnitCommit, commit_unit
from pipelines.mix import run_mix

TPI, CODEBOOK = 256, 8192


def job_output(root: Path, source: str, sentences: int, n_images: int, per_unit: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    info = ShardInfo("bench-fingerprint", CODEBOOK, TPI, f"bench-{source}")
    for u, start in enumerate(range(0, sentences, per_unit)):
        rows = []
        for i in range(start, min(sentences, start + per_unit)):
            key = f"gs://corpus/{source}/{u:05d}.tar#{i:09d}"
            rows.append(
                SentenceRow(
                    sentence_id(source, "t", [key], {}, []),
                    source,
                    "t",
                    "image",
                    n_images,
                    rng.integers(0, CODEBOOK, n_images * TPI).astype(np.uint16),
                    [(key, f, "image") for f in range(n_images)],
                    [key],
                )
            )
        commit_unit(UnitCommit(str(root), source, f"{u:05d}", "spec", info), rows, [])
    (root / "manifest.json").write_text(json.dumps({"job": {"name": source, "config_hash": info.job_config_hash}}))
    return str(root)


def plain_copy(inputs: list[str], dest: Path) -> int:
    """Read every sentence file's rows and write them back: the bytes a mix moves, with nothing decided."""
    dest.mkdir(parents=True)
    tokens = 0
    for n, path in enumerate(sorted(p for root in inputs for p in Path(root, "sentences").rglob("*.parquet"))):
        table = pq.read_table(path)
        tokens += int(sum(table["n_images"].to_pylist())) * TPI
        pq.write_table(table, dest / f"{n:05d}.parquet", compression="zstd")
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="corpus size factor (1: ~10M input tokens)")
    parser.add_argument("--workers", type=int, default=1, help="embedded runner worker processes")
    parser.add_argument("--workdir", help="keep everything here (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="lvm-mix-bench-"))
    shutil.rmtree(work / "mix", ignore_errors=True)
    shutil.rmtree(work / "plain", ignore_errors=True)
    n = lambda x: max(1, int(x * args.scale))  # noqa: E731
    made = time.perf_counter()
    inputs = {
        "single": job_output(work / "single", "single", n(20000), 1, n(10000), 1),
        "pairs": job_output(work / "pairs", "pairs", n(5000), 2, n(2500), 2),
        "clips": job_output(work / "clips", "clips", n(600), 16, n(300), 3),
    }
    made = time.perf_counter() - made
    config = parse_mix(
        {
            "name": "bench",
            "output": str(work / "mix"),
            "validation": 0.01,
            "parts": [
                {"name": "single", "inputs": [inputs["single"]], "weight": 0.4},  # ~0.7 epochs: subsampled
                {"name": "pairs", "inputs": [inputs["pairs"]], "weight": 0.35},  # ~1.2 epochs: repeated
                {"name": "clips", "inputs": [inputs["clips"]], "weight": 0.25},
            ],
        }
    )
    beam_args = (
        ["--direct_running_mode=multi_processing", f"--direct_num_workers={args.workers}"] if args.workers > 1 else []
    )
    start = time.perf_counter()
    manifest = run_mix(config, None, beam_args)
    mix_s = time.perf_counter() - start
    tokens = sum(s["tokens"] for s in manifest["shards"])
    start = time.perf_counter()
    plain_tokens = plain_copy(list(inputs.values()), work / "plain")
    plain_s = time.perf_counter() - start
    print(
        f"inputs: {sum(p['input_sentences'] for p in manifest['parts'].values()):,} sentences, "
        f"{plain_tokens:,} tokens in 3 job outputs (written in {made:.1f} s) under {work}"
    )
    for name, p in manifest["parts"].items():
        print(f"  {name:<7} asked {p['asked_share']:.4f} achieved {p['achieved_share']:.4f}  epochs {p['epochs']:.3f}")
    print(
        f"worst share error: {manifest['worst_global_share_error']:.5f} overall, "
        f"{manifest['worst_shard_share_error']:.5f} in a shard ({len(manifest['shards'])} shards)"
    )
    print(
        f"mix (embedded runner, {args.workers} worker(s)) : {tokens / mix_s / 1e6:8.2f} M tokens/s "
        f"({tokens:,} tokens out in {mix_s:.1f} s)"
    )
    print(f"plain pyarrow read + write          : {plain_tokens / plain_s / 1e6:8.2f} M tokens/s ({plain_s:.1f} s)")
    print(f"ratio mix / plain                   : {tokens / mix_s / (plain_tokens / plain_s):8.2f}")
    print(f"mix output bytes per token          : {manifest['bytes_per_token']:8.3f}   (target <= 1.7)")


if __name__ == "__main__":
    main()
