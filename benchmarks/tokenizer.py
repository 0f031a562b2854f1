"""Tokenizer encode throughput: the figures quoted in closing notes and the design's GPU reference.

    python benchmarks/tokenizer.py            # CPU: fixture-small, float32, batch 16
    python benchmarks/tokenizer.py --gpu      # + LVM config on CUDA: eager fp32, eager bf16, compiled bf16
    python benchmarks/tokenizer.py --config lvm --device cpu --batch-size 4 --batches 2

Every line is printed by lvm_data.tokenizer.bench (the code behind `lvm-data bench tokenizer`), with its
settings, the device name and the torch version. Weights of named configs are seeded random: they cost
what trained weights cost. Reference (DESIGN.md): LVM encoder on an H200, about 1,557 images/s compiled
bf16 at batch 256 and about 600 eager fp32 (H100: 1,473 / 538).
"""

from __future__ import annotations

import argparse

from lvm_data.tokenizer.bench import BenchSettings, format_result, run_bench

CPU_FIGURE = BenchSettings(model="fixture-small", device="cpu", dtype="float32", batch_size=16, batches=4)
GPU_MATRIX = [
    BenchSettings(model="lvm", device="cuda", dtype="float32", batch_size=256, batches=10, warmup=2),
    BenchSettings(model="lvm", device="cuda", dtype="bfloat16", batch_size=256, batches=10, warmup=2),
    BenchSettings(model="lvm", device="cuda", dtype="bfloat16", batch_size=256, batches=10, warmup=3, compile=True),
    BenchSettings(model="lvm", device="cuda", dtype="bfloat16", batch_size=256, batches=10, warmup=3, compile=True,
                  channels_last=True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="also run the LVM-config matrix on CUDA")
    parser.add_argument("--config", help="one run of this config (lvm, fixture-small, or a checkpoint) instead")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    if args.config:
        runs = [BenchSettings(model=args.config, device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                              batches=args.batches, compile=args.compile, channels_last=args.channels_last)]
    else:
        runs = [CPU_FIGURE] + (GPU_MATRIX if args.gpu else [])
    for settings in runs:
        print(format_result(run_bench(settings)), flush=True)


if __name__ == "__main__":
    main()
