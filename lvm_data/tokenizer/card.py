"""Build a builtin tokenizer folder: train on the packaged sample media, save, evaluate, write CARD.md.

The folder holds config.json + model.safetensors (open-muse layout), CARD.md (data, recipe, time,
machine, round-trip PSNR per held-out photo, codebook usage) and training_log.json (the history).
Evaluation reloads the written folder through `lvm_data.tokenizer.load`, so the card's figures are
those of the shipped files on the inference path.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from lvm_data.media import samples
from lvm_data.media.resize import resize
from lvm_data.tokenizer import load
from lvm_data.tokenizer.inspection import load_photos, psnr
from lvm_data.tokenizer.training import TrainConfig, TrainResult, save_checkpoint, train
from lvm_data.tokenizer.training_data import TrainingData, load_training_data

EXCLUDED_VIDEOS = ("carphone_distorted.mp4",)  # a compressed copy of carphone_pristine: same content, artefacts


@dataclass(frozen=True)
class CodebookUsage:
    """How much of the codebook a set of codes uses: distinct rows and perplexity (exp of code entropy)."""

    positions: int
    distinct: int
    codebook_size: int
    perplexity: float

    @property
    def share(self) -> float:
        return self.distinct / self.codebook_size


def codebook_usage(codes: np.ndarray, codebook_size: int) -> CodebookUsage:
    counts = np.bincount(np.asarray(codes, dtype=np.int64).ravel(), minlength=codebook_size)
    p = counts[counts > 0] / counts.sum()
    return CodebookUsage(
        int(counts.sum()), int((counts > 0).sum()), codebook_size, float(np.exp(-(p * np.log(p)).sum()))
    )


@dataclass
class BuildReport:
    """What a build produced, for the card and the command's summary. `heldout_psnr`: photo name -> dB."""

    heldout_psnr: dict[str, float]
    usage_heldout: CodebookUsage
    usage_sources: CodebookUsage
    result: TrainResult
    weights_bytes: int
    total_seconds: float

    @property
    def mean_psnr(self) -> float:
        return float(np.mean(list(self.heldout_psnr.values())))


def training_videos() -> list[Path]:
    return [v for v in samples.videos() if v.name not in EXCLUDED_VIDEOS]


def build_builtin(
    cfg: TrainConfig,
    out: Path,
    *,
    log: Callable[[dict], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> BuildReport:
    """Train on photos('train') + video frames, write the folder `out`, evaluate on photos('heldout')."""
    start = clock()
    data = load_training_data(
        samples.photos("train"), training_videos(), frame_stride=cfg.frame_stride, photo_share=cfg.photo_share
    )
    result = train(cfg, data, log=log, clock=clock)
    files = save_checkpoint(result.model, Path(out))
    tokenizer = load(str(out), device="cpu")
    heldout_paths = samples.photos("heldout")
    images = load_photos(heldout_paths, tokenizer.image_size)
    codes = tokenizer.encode(images)
    values = psnr(images, tokenizer.decode(codes))
    source_codes = tokenizer.encode(np.stack([resize(img, tokenizer.image_size) for img in data.images]))
    report = BuildReport(
        {p.name: float(v) for p, v in zip(heldout_paths, values, strict=True)},
        codebook_usage(codes, tokenizer.codebook_size),
        codebook_usage(source_codes, tokenizer.codebook_size),
        result,
        files[1].stat().st_size,
        clock() - start,
    )
    (Path(out) / "training_log.json").write_text(json.dumps(result.history, indent=1) + "\n")
    (Path(out) / "CARD.md").write_text(render_card(cfg, data, report, tokenizer.num_parameters))
    return report


def machine() -> str:
    """CPU model, logical CPUs, torch threads and version: enough to compare wall times."""
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        models = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        name = models[0] if models else name
    return (
        f"{name}, {len(_cpus())} logical CPUs available, torch {torch.__version__} with "
        f"{torch.get_num_threads()} thread(s)"
    )


def _cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def command(cfg: TrainConfig, out: str = "lvm_data/tokenizer/builtin/tiny") -> str:
    """The command line that reproduces a run of `cfg`."""
    bf16 = "--bf16" if cfg.bf16 else "--no-bf16"
    return (
        f"nice -n 10 lvm-data tokenizer train --out {out} --steps {cfg.steps} --batch-size {cfg.batch_size} "
        f"--crop {cfg.crop} --lr {cfg.lr:g} --seed {cfg.seed} --threads {torch.get_num_threads()} {bf16}"
    )


def render_card(cfg: TrainConfig, data: TrainingData, report: BuildReport, parameters: int) -> str:
    """CARD.md text."""
    m = cfg.model
    rows = "\n".join(f"| `{n}` | {p:.2f} |" for n, p in report.heldout_psnr.items())
    curve = [r for r in report.result.history if "heldout_frames_psnr" in r]
    curve_rows = "\n".join(
        f"| {r['step']} | {r['phase']} | {r['psnr']:.2f} | {r['heldout_frames_psnr']:.2f} |" for r in curve
    )
    photos = ", ".join(f"`{n}`" for n in data.names if "#" not in n)
    videos = sorted({n.split("#")[0] for n in data.names if "#" in n})
    n_frames = sum("#" in n for n in data.names)
    last = report.result.history[-1] if report.result.history else {}
    aug = cfg.augment
    return CARD_TEMPLATE.format(
        psnr_mean=report.mean_psnr,
        rows=rows,
        params=parameters,
        mb=report.weights_bytes / 1e6,
        bytes=report.weights_bytes,
        hidden=m.hidden_channels,
        level0=m.hidden_channels * m.channel_mult[0],
        per_group=m.hidden_channels * m.channel_mult[0] // 32,
        mult=list(m.channel_mult),
        nrb=m.num_res_blocks,
        z=m.z_channels,
        d=m.quantized_embed_dim,
        k=m.num_embeddings,
        tpi=m.tokens_per_image,
        uh=report.usage_heldout,
        us=report.usage_sources,
        n_sources=len(data.images),
        photos=photos,
        videos=", ".join(f"`{v}`" for v in videos),
        n_frames=n_frames,
        excluded=", ".join(f"`{v}`" for v in EXCLUDED_VIDEOS),
        heldout_frames=", ".join(data.heldout_names),
        aug=aug,
        cfg=cfg,
        photo_share=cfg.photo_share,
        vq_start=cfg.vq_start,
        decoder_start=cfg.decoder_start,
        train_min=report.result.wall_seconds / 60,
        total_min=report.total_seconds / 60,
        machine=machine(),
        restarts=report.result.restarts,
        last_psnr=last.get("psnr", float("nan")),
        curve_rows=curve_rows,
        command=command(cfg),
        config_json=json.dumps({k: v for k, v in asdict(cfg).items() if k != "model"}),
    )


CARD_TEMPLATE = """\
# builtin:tiny: a small VQGAN of the LVM family, trained on CPU

`lvm_data.tokenizer.load("builtin:tiny")`. The LVM tokenizer's model code and checkpoint layout (open-muse
`VQGANModel`: `config.json` + `model.safetensors`), at reduced width: f = 16, 256 tokens per 256x256 image,
input RGB in [0, 1], codes = nearest codebook row by squared L2 (no normalisation), raster order. It is a
stand-in that makes previews and round-trip checks meaningful without a download; it is not the LVM
checkpoint (point `tokenizer:` at that for real corpora).

## Round trip on held-out photos

decode(encode(x)) against x, uint8, each photo squashed to 256x256 (`decode_image` + `resize`), float32 on CPU.
These photos were never used in training.

| photo | PSNR (dB) |
|---|---:|
{rows}
| **mean** | **{psnr_mean:.2f}** |

## Codebook usage

- Held-out photos: {uh.distinct} distinct codes over {uh.positions} positions (perplexity {uh.perplexity:.0f}).
- The {n_sources} training sources at 256x256: {us.distinct} of {us.codebook_size} codes used \
({us.share:.1%}) over {us.positions} positions, perplexity {us.perplexity:.0f}.

## Model

| | |
|---|---|
| hidden_channels, channel_mult | {hidden}, {mult} |
| num_res_blocks | {nrb} (decoder {nrb} + 1 per level, as open-muse) |
| z_channels, quantized_embed_dim | {z}, {d} |
| codebook | {k} codes |
| tokens per image | {tpi} (16 x 16) |
| parameters | {params:,} (float32) |
| model.safetensors | {bytes:,} bytes ({mb:.2f} MB) |

GroupNorm always uses 32 groups: at the full-resolution level ({level0} channels) each group holds {per_group}
channel(s). With one channel per group the decoder's last norm removes every channel's mean over the image, so the
decoder cannot reproduce an image's overall colour (a first model with `channel_mult[0]` = 1 reconstructed every
photo in near-grey); the builtin recipe therefore uses `channel_mult[0]` = 2.

## Data

- Photos (`lvm_data.media.samples.photos('train')`): {photos}.
- Video frames: every {cfg.frame_stride}th frame of {videos} ({n_frames} frames); the last 15% of each video is held \
out of training (validation frames: {heldout_frames}). Left out: {excluded}.
- Sampling: {photo_share:.0%} of the crops from photos (uniform), the rest from video frames (equal per video).
- Held out for the round trip above: `photos('heldout')`.

Augmentation (per crop): a window at zoom {aug.zoom[0]}-{aug.zoom[1]}x (log-uniform; 1x = the scale of a 256x256
squash) with width/height stretch {aug.aspect[0]}-{aug.aspect[1]}, resized to {cfg.crop}x{cfg.crop} with
`lvm_data.media.resize.resize`; horizontal flip p = {aug.hflip}; brightness +-{aug.brightness:.0%}, contrast
+-{aug.contrast:.0%}, saturation +-{aug.saturation:.0%}.

## Training

- {cfg.steps} steps of {cfg.batch_size} crops of {cfg.crop}x{cfg.crop} (the model is convolutional; inference \
runs at 256x256). Adam (0.9, 0.99), lr {cfg.lr:g}, {cfg.warmup_steps} warm-up steps, cosine to 5%, grad-norm clip 1.
- Loss: MSE + {cfg.l1_weight} x L1 on pixels in [0, 1], + {cfg.colour_weight} x MSE of each crop's mean colour,
  + {cfg.commitment} x commitment in the vq phase. No GAN, no perceptual loss: the target is pixel fidelity.
- Phases: steps 0-{vq_start}: autoencoder (no quantiser); at step {vq_start}: latents whitened (PCA, eigenvalue
  floor {cfg.whiten_floor} x the largest; folded into `quant_conv` / `post_quant_conv`), codebook = k-means of the
  latents of {cfg.kmeans_batches} batches; steps {vq_start}-{decoder_start}: straight-through VQ, codebook by EMA
  (decay {cfg.ema_decay}), dead codes restarted on current latents every {cfg.restart_every} steps in the first
  {cfg.restart_until:.0%} of this phase ({restarts} restarts in all); steps
  {decoder_start}-{cfg.steps}: encoder and codebook frozen, decoder trained on the exact inference codes.
- Autocast bfloat16: {cfg.bf16} (weights and inference float32). Seed {cfg.seed}.
- Wall time: {train_min:.1f} min training, {total_min:.1f} min with data loading and evaluation, on {machine},
  under `nice -n 10` on a machine shared with other jobs.
- Last logged training-crop PSNR: {last_psnr:.2f} dB.

Held-out video frames during training (float32 inference path):

| step | phase | training crops PSNR (dB) | held-out frames PSNR (dB) |
|---:|---|---:|---:|
{curve_rows}

## Reproduce

```
{command}
```

Same data, seed and settings give the same batches and initialisation; bit-identical weights also need the
same CPU kind, thread count and torch version. Full settings: `{config_json}`.
History: `training_log.json`.

## Limits

Trained on {n_sources} sources (15 photos and a few short videos) for minutes on a CPU: expect blurred
fine texture and text, and colour shifts on content far from the training photos. Fine for previews,
tests and pipeline smoke runs; use the LVM checkpoint for real corpora.
"""
