"""The LVM VQGAN (open-muse `VQGANModel`, taming-transformers structure) in one file.

Parameter names equal the open-muse checkpoint keys (`encoder.down.0.block.0.conv1.weight`,
`quantize.embedding.weight`, ...), so checkpoints load strictly: no missing or unexpected key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class VQGANConfig:
    """Constructor arguments of open-muse `VQGANModel`; defaults are the LVM tokenizer's."""

    resolution: int = 256
    num_channels: int = 3
    hidden_channels: int = 128
    channel_mult: tuple[int, ...] = (1, 2, 2, 4, 6)
    num_res_blocks: int = 2
    decoder_res_blocks: int | None = None
    decoder_hidden_channels: int | None = None
    decoder_channel_mult: tuple[int, ...] | None = None
    extra_mid_res_blocks: int | None = None
    attn_resolutions: tuple[int, ...] = ()
    no_attn_mid_block: bool = True
    z_channels: int = 64
    quantized_embed_dim: int = 64
    num_embeddings: int = 8192
    dropout: float = 0.0
    resample_with_conv: bool = True
    commitment_cost: float = 0.25
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_dict(cls, raw: dict) -> VQGANConfig:
        """Build from a config.json mapping; keys we do not model are kept in `extra`."""
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in raw.items() if k in known}
        for key in ("channel_mult", "decoder_channel_mult", "attn_resolutions"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        extra = {k: v for k, v in raw.items() if k not in known}
        return cls(**values, extra=extra)

    def to_dict(self) -> dict:
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
        out.pop("extra")
        return out

    @property
    def num_resolutions(self) -> int:
        return len(self.channel_mult)

    @property
    def latent_size(self) -> int:
        return self.resolution // 2 ** (self.num_resolutions - 1)

    @property
    def tokens_per_image(self) -> int:
        return self.latent_size**2


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = _norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.norm2 = _norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all positions of a feature map."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        q = self.q(y).reshape(b, 1, c, h * w).transpose(-1, -2)  # (b, 1, hw, c)
        k = self.k(y).reshape(b, 1, c, h * w).transpose(-1, -2)
        v = self.v(y).reshape(b, 1, c, h * w).transpose(-1, -2)
        y = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(c)) v
        y = y.transpose(-1, -2).reshape(b, c, h, w)
        return x + self.proj_out(y)


class Downsample(nn.Module):
    def __init__(self, channels: int, with_conv: bool):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 2, 0) if with_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is None:
            return F.avg_pool2d(x, 2, 2)
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # asymmetric pad, as taming does


class Upsample(nn.Module):
    def __init__(self, channels: int, with_conv: bool):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1) if with_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x if self.conv is None else self.conv(x)


class Level(nn.Module):
    """One resolution level: res blocks (+ attention after each) and an optional resample.

    Attention runs after every block whenever the level has it (taming semantics). open-muse only
    runs it when a level holds more than one attention block; both agree for num_res_blocks >= 2.
    """

    def __init__(
        self, blocks: list[ResnetBlock], attn: list[AttnBlock], resample: nn.Module | None, resample_name: str
    ):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList(attn)
        self.resample_name = resample_name
        if resample is not None:
            self.add_module(resample_name, resample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.block):
            x = block(x)
            if len(self.attn):
                x = self.attn[i](x)
        resample = getattr(self, self.resample_name, None)
        return x if resample is None else resample(x)


class MidBlock(nn.Module):
    def __init__(self, channels: int, attention: bool, dropout: float, extra_blocks: int = 0):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout)
        self.attn_1 = AttnBlock(channels) if attention else None
        self.block_2 = ResnetBlock(channels, channels, dropout)
        if extra_blocks:
            self.extra_mid_res_blocks = nn.ModuleList(
                ResnetBlock(channels, channels, dropout) for _ in range(extra_blocks)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block_1(x)
        if self.attn_1 is not None:
            x = self.attn_1(x)
        x = self.block_2(x)
        for block in getattr(self, "extra_mid_res_blocks", ()):
            x = block(x)
        return x


class Encoder(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        ch, mult = cfg.hidden_channels, cfg.channel_mult
        self.conv_in = nn.Conv2d(cfg.num_channels, ch, 3, 1, 1)
        levels, res, block_in = [], cfg.resolution, ch
        for i, m in enumerate(mult):
            blocks, attn = [], []
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResnetBlock(block_in, ch * m, cfg.dropout))
                block_in = ch * m
                if res in cfg.attn_resolutions:
                    attn.append(AttnBlock(block_in))
            last = i == len(mult) - 1
            down = None if last else Downsample(block_in, cfg.resample_with_conv)
            levels.append(Level(blocks, attn, down, "downsample"))
            res = res if last else res // 2
        self.down = nn.ModuleList(levels)
        self.mid = MidBlock(block_in, not cfg.no_attn_mid_block, cfg.dropout)
        self.norm_out = _norm(block_in)
        self.conv_out = nn.Conv2d(block_in, cfg.z_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)  # (N, ch, R, R)
        for level in self.down:
            h = level(h)
        h = self.mid(h)  # (N, ch * mult[-1], R/f, R/f)
        return self.conv_out(F.silu(self.norm_out(h)))  # (N, z_channels, R/f, R/f)


class Decoder(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        ch = cfg.decoder_hidden_channels or cfg.hidden_channels
        mult = cfg.decoder_channel_mult or cfg.channel_mult
        n_blocks = cfg.num_res_blocks if cfg.decoder_res_blocks is None else cfg.decoder_res_blocks
        top = ch * mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, top, 3, 1, 1)
        self.mid = MidBlock(top, not cfg.no_attn_mid_block, cfg.dropout, cfg.extra_mid_res_blocks or 0)
        levels = []
        for i, m in enumerate(mult):  # stored in resolution order: up.0 is full resolution
            res = cfg.resolution // 2**i
            block_in = top if i == len(mult) - 1 else ch * mult[i + 1]
            blocks, attn = [], []
            for _ in range(n_blocks + 1):
                blocks.append(ResnetBlock(block_in, ch * m, cfg.dropout))
                block_in = ch * m
                if res in cfg.attn_resolutions:
                    attn.append(AttnBlock(block_in))
            up = Upsample(block_in, cfg.resample_with_conv) if i != 0 else None
            levels.append(Level(blocks, attn, up, "upsample"))
        self.up = nn.ModuleList(levels)
        self.norm_out = _norm(ch * mult[0])
        self.conv_out = nn.Conv2d(ch * mult[0], cfg.num_channels, 3, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))  # (N, ch * mult[-1], R/f, R/f)
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))  # (N, 3, R, R)


class VectorQuantizer(nn.Module):
    def __init__(self, num_embeddings: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(num_embeddings, dim)

    def nearest(self, z: torch.Tensor, chunk: int = 16384) -> torch.Tensor:
        """Index of the nearest codebook row by squared L2, in float32. z: (N, D, H, W) -> (N, H*W)."""
        n, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d).float()  # (N*H*W, D), raster order
        book = self.embedding.weight.float()  # (K, D)
        book_sq = book.pow(2).sum(1)  # (K,)
        out = torch.empty(flat.shape[0], dtype=torch.long, device=z.device)
        for start in range(0, flat.shape[0], chunk):
            part = flat[start : start + chunk]
            dist = torch.addmm(part.pow(2).sum(1, keepdim=True) + book_sq, part, book.t(), alpha=-2.0)
            out[start : start + chunk] = dist.argmin(1)
        return out.reshape(n, h * w)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """(N, T) codes -> (N, D, sqrt(T), sqrt(T)) embeddings."""
        n, t = codes.shape
        side = int(round(t**0.5))
        return self.embedding(codes).reshape(n, side, side, -1).permute(0, 3, 1, 2).contiguous()  # NCHW memory


class VQGAN(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quantize = VectorQuantizer(cfg.num_embeddings, cfg.quantized_embed_dim)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.quantized_embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.quantized_embed_dim, cfg.z_channels, 1)

    def latents(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, R, R) model-range pixels -> (N, D, R/f, R/f) pre-quantisation latents."""
        return self.quant_conv(self.encoder(pixels))

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, R, R) -> (N, tokens) codes, raster order."""
        return self.quantize.nearest(self.latents(pixels))

    def decode_latents(self, z_q: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(z_q))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(N, tokens) codes -> (N, 3, R, R) model-range pixels (unclipped)."""
        return self.decode_latents(self.quantize.lookup(codes))

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: (reconstruction, latents, quantised latents with straight-through gradient)."""
        z = self.latents(pixels)
        codes = self.quantize.nearest(z.detach())
        z_q = self.quantize.lookup(codes)
        z_st = z + (z_q - z).detach()
        return self.decode_latents(z_st), z, z_q
