"""Throughput of the whole job.

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
units (lvm_data.job.executor). The logic lives in pipelines/bench.py (`run_ceiling`). Weights of named
configs are seeded random: they cost what trained weights cost (their codes are all alike, so "identical
codes" says little with them).
"""

from __future__ import annotations

import argparse
import logging
import sys

GPU_PRESET = {"tokenizer": "lvm", "device": "cuda", "images": 16384, "small": 2048, "batch_size": 256,
              "shard_size": 128}


def parse(argv: list[str]):
    """(CeilingBench, None) for --gpu / --vs-encoder; (None, argv) for the pipeline-vs-loop bench."""
    from pipelines.bench import CeilingBench

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


def main(argv: list[str]) -> None:
    ceiling, rest = parse(argv)
    if ceiling is None:
        from lvm_data.cli import main as cli

        cli(["bench", "pipeline", *rest])
        return
    from lvm_data.tokenizer.tokenizer import resolve_device
    from pipelines.bench import format_ceiling, run_ceiling

    try:
        resolve_device(ceiling.device)
    except RuntimeError as err:
        raise SystemExit(f"error: {err}") from err
    # warnings the embedded runner forwards from its worker processes, as `lvm-data run` quiets them
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)
    print(format_ceiling(run_ceiling(ceiling)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
