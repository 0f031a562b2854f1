"""Encode throughput: images per second for a tokenizer config, device, dtype and batch size.

Backs `lvm-data bench tokenizer`. A named config (`lvm`, the released LVM tokenizer's shape; `fixture-small`,
the reference fixture's) gets seeded random weights, which cost exactly what trained ones cost; anything else is
loaded as a checkpoint location.

Command line, the figures quoted in closing notes and the design's GPU reference:

    python benchmarks/tokenizer.py            # CPU: fixture-small, float32, batch 16
    python benchmarks/tokenizer.py --gpu      # + LVM config on CUDA: eager fp32, eager bf16, compiled bf16
    python benchmarks/tokenizer.py --config lvm --device cpu --batch-size 4 --batches 2

Every line gives its settings, the device name and the torch version. Reference (DESIGN.md): LVM encoder on an H200,
about 1,557 images/s compiled bf16 at batch 256 and about 600 eager fp32 (H100: 1,473 / 538).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lvm_data.tokenizer.checkpoint import UNIT_RANGE, Checkpoint
from lvm_data.tokenizer.model import VQGAN, VQGANConfig
from lvm_data.tokenizer.tokenizer import Tokenizer

NAMED_CONFIGS = {
    "lvm": VQGANConfig(),  # open-muse vqgan-f16-8192-laion: hidden 128, mult 1,2,2,4,6, 8192 codes
    "fixture-small": VQGANConfig(hidden_channels=32),  # ../shared/fixtures/vqgan/muse-lvm-small
}


@dataclass(frozen=True)
class BenchSettings:
    """What to measure. `model` is a named config or a checkpoint path/URI."""

    model: str = "fixture-small"
    device: str = "auto"
    dtype: str = "float32"
    batch_size: int = 16
    compile: bool = False
    channels_last: bool = False
    batches: int = 5
    warmup: int = 1


@dataclass(frozen=True)
class BenchResult:
    settings: BenchSettings
    device: str
    num_parameters: int
    images: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds


def random_checkpoint(name: str, seed: int = 0) -> Checkpoint:
    """Seeded random weights for a named config; the global torch RNG is left as it was."""
    if name not in NAMED_CONFIGS:
        raise ValueError(f"unknown config {name!r}; named configs: {', '.join(NAMED_CONFIGS)}")
    config = NAMED_CONFIGS[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = VQGAN(config).state_dict()
    return Checkpoint(f"random ({name})", config, state, UNIT_RANGE, [])


def build_tokenizer(settings: BenchSettings) -> Tokenizer:
    options: dict[str, Any] = dict(
        device=settings.device,
        dtype=settings.dtype,
        batch_size=settings.batch_size,
        compile=settings.compile,
        channels_last=settings.channels_last,
    )
    if settings.model in NAMED_CONFIGS:
        return Tokenizer(random_checkpoint(settings.model), name=settings.model, **options)
    from lvm_data.tokenizer import load

    return load(settings.model, **options)


def time_encode(
    tokenizer: Tokenizer, batches: int, warmup: int, clock: Callable[[], float] = time.perf_counter
) -> tuple[int, float]:
    """(images, seconds) for `batches` encode calls of one batch each, after `warmup` untimed calls.

    encode returns host memory, so each call has finished on the device when the clock is read.
    """
    rng = np.random.default_rng(0)
    size = tokenizer.image_size
    images = rng.integers(0, 256, (tokenizer.batch_size, size, size, 3), dtype=np.uint8)
    for _ in range(warmup):
        tokenizer.encode(images)
    start = clock()
    for _ in range(batches):
        tokenizer.encode(images)
    return batches * len(images), clock() - start


def run_bench(settings: BenchSettings, clock: Callable[[], float] = time.perf_counter) -> BenchResult:
    tokenizer = build_tokenizer(settings)
    images, seconds = time_encode(tokenizer, settings.batches, settings.warmup, clock)
    return BenchResult(settings, str(tokenizer.device), tokenizer.num_parameters, images, seconds)


def format_rate(per_s: float) -> str:
    """A rate with one decimal, or two significant digits below 1 (an emulated run's 0.0092 is not 0.0)."""
    return f"{per_s:,.1f}" if per_s >= 1 else f"{per_s:.2g}"


def format_result(result: BenchResult) -> str:
    s = result.settings
    device = result.device
    if device.startswith("cuda"):
        device += f" ({torch.cuda.get_device_name(torch.device(device))})"
    return (
        f"encode {format_rate(result.images_per_s)} images/s  config={s.model} params={result.num_parameters:,} "
        f"device={device} dtype={s.dtype} batch={s.batch_size} compile={s.compile} "
        f"channels_last={s.channels_last} ({result.images} images in {result.seconds:.2f} s, "
        f"{s.warmup} warm-up batches, torch {torch.__version__}, {torch.get_num_threads()} CPU threads)"
    )


CPU_FIGURE = BenchSettings(model="fixture-small", device="cpu", dtype="float32", batch_size=16, batches=4)
GPU_MATRIX = [
    BenchSettings(model="lvm", device="cuda", dtype="float32", batch_size=256, batches=10, warmup=2),
    BenchSettings(model="lvm", device="cuda", dtype="bfloat16", batch_size=256, batches=10, warmup=2),
    BenchSettings(model="lvm", device="cuda", dtype="bfloat16", batch_size=256, batches=10, warmup=3, compile=True),
    BenchSettings(
        model="lvm",
        device="cuda",
        dtype="bfloat16",
        batch_size=256,
        batches=10,
        warmup=3,
        compile=True,
        channels_last=True,
    ),
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
        runs = [
            BenchSettings(
                model=args.config,
                device=args.device,
                dtype=args.dtype,
                batch_size=args.batch_size,
                batches=args.batches,
                compile=args.compile,
                channels_last=args.channels_last,
            )
        ]
    else:
        runs = [CPU_FIGURE] + (GPU_MATRIX if args.gpu else [])
    for settings in runs:
        print(format_result(run_bench(settings)), flush=True)


if __name__ == "__main__":
    main()
