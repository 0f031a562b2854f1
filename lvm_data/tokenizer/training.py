"""Train a small VQGAN of the LVM family on CPU: the recipe behind `builtin:tiny`.

No GAN and no perceptual network: the objective is pixel fidelity (MSE, a little L1, and an extra
term on each crop's mean colour, which GroupNorm makes slow to learn), which is what round-trip PSNR
measures. Three phases over `TrainConfig.steps`:

1. autoencoder: the decoder reads the continuous latents, so encoder and decoder learn a useful
   latent space before any code exists;
2. vq: the latents are whitened (folded into quant_conv / post_quant_conv), the codebook starts as
   k-means of them, then follows them by EMA (no gradient), with dead codes restarted on current
   latents early on; the encoder gets a straight-through gradient and a small commitment loss;
3. decoder: encoder and codebook are frozen and the decoder learns to read the exact codes that
   inference produces.

The inference model is `lvm_data.tokenizer.model.VQGAN` unchanged (nearest row by squared L2, no
normalisation); EMA state lives here. All randomness is seeded by hashing (seed, purpose, step).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from lvm_data.determinism import derive_seed, rng_for
from lvm_data.tokenizer.cpu import emulated_bf16_warning
from lvm_data.tokenizer.model import VQGAN, VQGANConfig
from lvm_data.tokenizer.training_data import Augment, TrainingData, sample_batch

TINY_CONFIG = VQGANConfig(
    resolution=256,
    hidden_channels=32,
    channel_mult=(2, 1, 2, 2, 3),
    num_res_blocks=1,
    z_channels=16,
    quantized_embed_dim=16,
    num_embeddings=8192,
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; with the same data it reproduces the same weights."""

    steps: int = 2500
    batch_size: int = 8
    crop: int = 128  # training crops (the model is convolutional; inference runs at 256)
    lr: float = 5e-4
    warmup_steps: int = 100
    autoencoder_fraction: float = 0.15
    decoder_fraction: float = 0.15
    ema_decay: float = 0.99
    commitment: float = 0.02
    l1_weight: float = 0.2
    colour_weight: float = 4.0  # extra loss on each crop's mean colour: see `step_losses`
    restart_every: int = 50  # steps between dead-code restarts
    restart_until: float = 0.6  # restarts only in this first share of the vq phase, so codes settle before the end
    dead_fraction: float = 0.03  # a code is dead below this share of the mean EMA use per code
    kmeans_batches: int = 64
    kmeans_iters: int = 10
    whiten_floor: float = 0.01  # whiten latents before k-means (0: off); see `whiten_latents`
    bf16: bool = True  # autocast for speed on CPUs with AMX/AVX512-BF16; weights stay float32
    seed: int = 0
    frame_stride: int = 4  # every n-th video frame is a training source
    photo_share: float = 0.5  # share of crops drawn from photos; the rest from video frames
    log_every: int = 50
    eval_every: int = 500
    model: VQGANConfig = TINY_CONFIG
    augment: Augment = field(default_factory=Augment)

    def __post_init__(self):
        f = 2 ** (len(self.model.channel_mult) - 1)
        if self.crop % f:
            raise ValueError(f"crop {self.crop} must be a multiple of the model's downsampling factor {f}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be at least 1")

    @property
    def vq_start(self) -> int:
        return round(self.steps * self.autoencoder_fraction)

    @property
    def decoder_start(self) -> int:
        return max(self.vq_start, self.steps - round(self.steps * self.decoder_fraction))

    def restarts_at(self, step: int) -> bool:
        """Whether dead codes are restarted after `step`."""
        last = self.vq_start + self.restart_until * (self.decoder_start - self.vq_start)
        return self.vq_start <= step < last and (step + 1) % self.restart_every == 0

    def phase(self, step: int) -> str:
        if step < self.vq_start:
            return "autoencoder"
        return "vq" if step < self.decoder_start else "decoder"

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine decay to 5% of `lr`."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        return self.lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def slow_bf16_warning(cfg: TrainConfig) -> str | None:
    """The warning a run owes its user when `--bf16` (the default) meets a CPU that emulates it; None otherwise."""
    if not cfg.bf16:
        return None
    return emulated_bf16_warning(
        "--bf16",
        "about 30x slower than float32 (forward and backward of one batch of this recipe, one thread of an AVX2 "
        "machine: 313 s against 9.1); train here with --no-bf16",
    )


class EmaCodebook:
    """Exponential-moving-average k-means on the model's codebook (`quantize.embedding.weight`, in place)."""

    def __init__(self, weight: torch.Tensor, decay: float, eps: float = 1e-5):
        self.weight = weight
        self.decay = decay
        self.eps = eps
        self.size = torch.zeros(weight.shape[0])  # EMA of assignments per step, per code
        self.total = weight.detach().clone() * 0.0  # EMA of the sum of assigned latents, per code
        self.seen = torch.zeros(weight.shape[0], dtype=torch.bool)  # codes assigned since `take_seen`

    def reset(self, centroids: torch.Tensor, size: torch.Tensor) -> None:
        with torch.no_grad():
            self.weight.copy_(centroids)
        self.size = size.clone().float()
        self.total = centroids * self.size[:, None]

    @torch.no_grad()
    def update(self, flat: torch.Tensor, codes: torch.Tensor) -> None:
        """flat: (M, D) latents, codes: (M,) their nearest rows."""
        k = self.weight.shape[0]
        counts = torch.bincount(codes, minlength=k).float()
        self.seen |= counts > 0
        sums = torch.zeros_like(self.total).index_add_(0, codes, flat.float())
        self.size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.total.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.size.sum()
        smoothed = (self.size + self.eps) / (n + k * self.eps) * n  # Laplace smoothing keeps rows finite
        self.weight.copy_(self.total / smoothed[:, None])

    @torch.no_grad()
    def restart_dead(self, flat: torch.Tensor, threshold: float, generator: torch.Generator) -> int:
        """Move codes whose EMA use is below `threshold` onto random latents of `flat`; returns how many."""
        dead = torch.nonzero(self.size < threshold).flatten()
        if len(dead) == 0:
            return 0
        picks = torch.randint(0, flat.shape[0], (len(dead),), generator=generator)
        noise = torch.randn(len(dead), flat.shape[1], generator=generator) * 0.01 * flat.std()
        fresh = flat[picks].float() + noise
        mean_use = float(self.size.mean())
        self.size[dead] = mean_use
        self.total[dead] = fresh * mean_use
        self.weight[dead] = fresh
        return len(dead)

    def take_seen(self) -> int:
        """How many distinct codes were assigned since the last call."""
        count = int(self.seen.sum())
        self.seen.zero_()
        return count


@dataclass
class TrainResult:
    """The trained model and what happened: `history` holds one dict per logged step."""

    model: VQGAN
    history: list[dict]
    wall_seconds: float
    restarts: int


def new_model(cfg: VQGANConfig, seed: int) -> VQGAN:
    """A freshly initialised VQGAN; the global torch RNG is used under `fork_rng`, so it is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init") % 2**63)
        return VQGAN(cfg)


def flatten(z: torch.Tensor) -> torch.Tensor:
    """(N, D, H, W) -> (N*H*W, D) in raster order, as `VectorQuantizer.nearest` orders codes."""
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float in [0, 1], the LVM input range, contiguous NCHW.

    Contiguous matters: a permuted NHWC view makes convolutions run channels-last, which is about 2x
    slower in bfloat16 on CPU.
    """
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().float() / 255.0


@torch.no_grad()
def kmeans_init(model: VQGAN, data: TrainingData, cfg: TrainConfig, codebook: EmaCodebook) -> None:
    """Set the codebook to k-means centroids of latents from `cfg.kmeans_batches` training batches."""
    latents = []
    for i in range(cfg.kmeans_batches):
        x = to_tensor(sample_batch(data, rng_for(cfg.seed, "kmeans", str(i)), cfg.batch_size, cfg.crop, cfg.augment))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            latents.append(flatten(model.latents(x)).float())
    points = torch.cat(latents)  # (M, D)
    if cfg.whiten_floor > 0:
        points = whiten_latents(model, points, cfg.whiten_floor)
    generator = torch.Generator().manual_seed(derive_seed(cfg.seed, "kmeans") % 2**63)
    k = codebook.weight.shape[0]
    centroids = points[torch.randint(0, len(points), (k,), generator=generator)]
    counts: torch.Tensor | None = None
    for _ in range(cfg.kmeans_iters):
        codebook.weight.copy_(centroids)
        codes = model.quantize.nearest(points.t()[None, :, :, None]).flatten()  # (M,) over a (1, D, M, 1) view
        counts = torch.bincount(codes, minlength=k).float()
        centroids = torch.zeros_like(centroids).index_add_(0, codes, points) / counts.clamp(min=1)[:, None]
        empty = torch.nonzero(counts == 0).flatten()
        centroids[empty] = points[torch.randint(0, len(points), (len(empty),), generator=generator)]
    if counts is None:  # kmeans_iters < 1: no assignment pass ran (this was a NameError)
        raise ValueError(f"kmeans_iters is {cfg.kmeans_iters}: k-means needs at least one pass; set it to 1 or more")
    codebook.reset(centroids, counts / cfg.kmeans_batches)


@torch.no_grad()
def whiten_latents(model: VQGAN, points: torch.Tensor, floor: float) -> torch.Tensor:
    """Move the latent coordinates so `points` (M, D) get zero mean and unit variance along every principal
    direction: z' = A (z - mu) is folded into `quant_conv` and its inverse into `post_quant_conv`, so
    decoder(encoder(x)) without quantisation is unchanged; only the metric of the nearest-row search changes.

    Without this, k-means spends nearly all codes on the one or two directions of largest variance
    (brightness) and quantisation erases the weaker ones (colour, texture), which then never train.
    Eigenvalues below `floor` x the largest are raised to it, so empty directions are not blown up.
    Returns the points in the new coordinates.
    """
    mu = points.mean(0)
    evals, evecs = torch.linalg.eigh(torch.cov(points.t()))
    evals = evals.clamp(min=floor * float(evals.max()))
    a = evecs.t() / evals.sqrt()[:, None]  # (D, D): rows are scaled principal directions
    a_inv = evecs * evals.sqrt()[None, :]
    qc, pqc = model.quant_conv, model.post_quant_conv
    assert qc.bias is not None and pqc.bias is not None, "VQGAN's 1x1 quant convs have biases"
    qc.weight.copy_(torch.einsum("ij,jk->ik", a, qc.weight[:, :, 0, 0])[:, :, None, None])
    qc.bias.copy_(a @ (qc.bias - mu))
    pqc.bias.copy_(pqc.weight[:, :, 0, 0] @ mu + pqc.bias)
    pqc.weight.copy_((pqc.weight[:, :, 0, 0] @ a_inv)[:, :, None, None])
    return (points - mu) @ a.t()


def effective_rank(flat: torch.Tensor) -> float:
    """Participation ratio of the latent covariance, (tr C)^2 / tr(C^2): 1 when the latents vary along one
    direction only, D when they vary equally along all D. A falling value is dimensional collapse."""
    cov = torch.cov(flat.t())
    return float(torch.trace(cov) ** 2 / torch.trace(cov @ cov).clamp(min=1e-12))


def step_losses(
    model: VQGAN, x: torch.Tensor, phase: str, cfg: TrainConfig, codebook: EmaCodebook
) -> tuple[torch.Tensor, dict]:
    """Forward one batch in `phase`; returns the loss to minimise and its parts (floats) for the log.

    `latent_rank` (see `effective_rank`) is among the parts only in the phases that train the encoder.
    """
    commit, parts = torch.zeros(()), {}
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        if phase == "decoder":
            with torch.no_grad(), torch.autocast("cpu", enabled=False):
                codes = model.encode(x)  # float32, exactly the codes inference gives
            recon = model.decode_latents(model.quantize.lookup(codes))
        else:
            z = model.latents(x)  # (N, D, crop/f, crop/f)
            parts["latent_rank"] = effective_rank(flatten(z.detach().float()))
            if phase == "autoencoder":
                recon = model.decode_latents(z)
            else:
                codes = model.quantize.nearest(z.detach().float())  # (N, T)
                z_q = model.quantize.lookup(codes)
                recon = model.decode_latents(z + (z_q - z).detach())  # straight-through
                commit = F.mse_loss(z.float(), z_q)
                codebook.update(flatten(z.detach()), codes.flatten())
    recon = recon.float()
    mse = F.mse_loss(recon, x)
    l1 = F.l1_loss(recon, x)
    colour = F.mse_loss(recon.mean(dim=(2, 3)), x.mean(dim=(2, 3)))  # per-crop mean colour
    loss = mse + cfg.l1_weight * l1 + cfg.colour_weight * colour + cfg.commitment * commit
    return loss, {
        "loss": loss.item(),
        "mse": mse.item(),
        "commit": commit.item(),
        **parts,
        "psnr": 10 * math.log10(1.0 / max(mse.item(), 1e-10)),
    }


def train(
    cfg: TrainConfig,
    data: TrainingData,
    *,
    log: Callable[[dict], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> TrainResult:
    """Train from scratch for `cfg.steps` steps on `data`; `log` receives each logged history row."""
    model = new_model(cfg.model, cfg.seed).train()
    codebook = EmaCodebook(model.quantize.embedding.weight, cfg.ema_decay)
    model.quantize.embedding.weight.requires_grad_(False)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, betas=(0.9, 0.99))
    vectors_per_step = cfg.batch_size * (cfg.crop // 2 ** (len(cfg.model.channel_mult) - 1)) ** 2
    threshold = cfg.dead_fraction * vectors_per_step / cfg.model.num_embeddings
    history, restarts, start = [], 0, clock()
    for step in range(cfg.steps):
        phase = cfg.phase(step)
        if step == cfg.vq_start:
            kmeans_init(model, data, cfg, codebook)
            for p in (*model.quant_conv.parameters(), *model.post_quant_conv.parameters()):
                optimizer.state.pop(p, None)  # Adam's moments belong to the old latent coordinates
        if step == cfg.decoder_start:
            model.encoder.requires_grad_(False)
            model.quant_conv.requires_grad_(False)
        x = to_tensor(sample_batch(data, rng_for(cfg.seed, "batch", str(step)), cfg.batch_size, cfg.crop, cfg.augment))
        optimizer.param_groups[0]["lr"] = cfg.lr_at(step)
        loss, parts = step_losses(model, x, phase, cfg, codebook)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if cfg.restarts_at(step):
            restarts += restart_dead_codes(model, x, cfg, codebook, threshold, step)
        done = step + 1
        if done % cfg.log_every == 0 or done % cfg.eval_every == 0 or done == cfg.steps:
            row = {
                "step": done,
                "phase": phase,
                "lr": cfg.lr_at(step),
                **parts,
                "restarts": restarts,
                "codes_used": codebook.take_seen(),
                "seconds": round(clock() - start, 1),
            }
            if (done % cfg.eval_every == 0 or done == cfg.steps) and data.heldout:
                row["heldout_frames_psnr"] = heldout_psnr(model, data.heldout)
            history.append(row)
            if log is not None:
                log(row)
    return TrainResult(model.eval(), history, clock() - start, restarts)


def restart_dead_codes(
    model: VQGAN, x: torch.Tensor, cfg: TrainConfig, codebook: EmaCodebook, threshold: float, step: int
) -> int:
    """Restart codes used less than `threshold` on the latents of batch `x`; returns how many moved."""
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        flat = flatten(model.latents(x)).float()
    generator = torch.Generator().manual_seed(derive_seed(cfg.seed, "restart", str(step)) % 2**63)
    return codebook.restart_dead(flat, threshold, generator)


@torch.no_grad()
def heldout_psnr(model: VQGAN, images: list[np.ndarray]) -> float:
    """Mean round-trip PSNR (dB, uint8 pixels) of 256x256 images through the float32 inference path."""
    x = to_tensor(np.stack(images))
    recon = model.decode(model.encode(x)).clamp(0, 1)
    pixels = torch.floor(recon * 255 + 0.5)
    mse = (pixels - torch.floor(x * 255 + 0.5)).pow(2).mean(dim=(1, 2, 3))
    return float((10 * torch.log10(255.0**2 / mse.clamp(min=1e-10))).mean())


MUSE_CONFIG_KEYS = (
    "attn_resolutions",
    "channel_mult",
    "commitment_cost",
    "dropout",
    "hidden_channels",
    "no_attn_mid_block",
    "num_channels",
    "num_embeddings",
    "num_res_blocks",
    "quantized_embed_dim",
    "resample_with_conv",
    "resolution",
    "z_channels",
)


def muse_config(cfg: VQGANConfig) -> dict:
    """config.json content exactly as open-muse's `VQGANModel` writes it (its constructor keys, no others)."""
    if any(
        v is not None
        for v in (
            cfg.decoder_res_blocks,
            cfg.decoder_hidden_channels,
            cfg.decoder_channel_mult,
            cfg.extra_mid_res_blocks,
        )
    ):
        raise ValueError("open-muse VQGANModel has no decoder_* / extra_mid_res_blocks keys; leave them unset")
    values = cfg.to_dict()
    return {"_class_name": "VQGANModel", "_version": "0.0.1", **{k: values[k] for k in MUSE_CONFIG_KEYS}}


def save_checkpoint(model: VQGAN, folder: Path) -> list[Path]:
    """Write config.json + model.safetensors (float32, open-muse keys) into `folder`; returns the two paths."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    weights, config = folder / "model.safetensors", folder / "config.json"
    partial = folder / ".model.safetensors.partial"
    save_file(state, str(partial), metadata={"format": "pt"})
    os.replace(partial, weights)
    partial = folder / ".config.json.partial"
    partial.write_text(json.dumps(muse_config(model.config), indent=2, sort_keys=True) + "\n")
    os.replace(partial, config)
    return [config, weights]
