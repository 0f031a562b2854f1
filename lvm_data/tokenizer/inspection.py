"""What a loaded tokenizer is, and how well it reconstructs real photos it never saw.

Backs `lvm-data tokenizer inspect URI`. The photos are the held-out split of
lvm_data.media.samples (never used to train the builtin tokenizer), fitted with the squash policy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lvm_data.media.image import decode_image
from lvm_data.media.resize import resize
from lvm_data.media.samples import photos
from lvm_data.tokenizer.tokenizer import Tokenizer


@dataclass(frozen=True)
class Inspection:
    """Facts about one tokenizer; `psnr` maps photo file name -> round-trip PSNR in dB."""

    name: str
    format: str
    config: dict
    num_parameters: int
    fingerprint: str
    codebook_size: int
    tokens_per_image: int
    image_size: int
    input_range: tuple[float, float]
    files: list[str]
    notes: list[str]
    psnr: dict[str, float] = field(default_factory=dict)

    @property
    def mean_psnr(self) -> float:
        return float(np.mean(list(self.psnr.values()))) if self.psnr else float("nan")

    def to_dict(self) -> dict:
        return {**asdict(self), "mean_psnr": self.mean_psnr}


def load_photos(paths: list[Path], size: int, policy: str = "squash") -> np.ndarray:
    """(N, size, size, 3) uint8 RGB from image files, decoded as the pipeline decodes them."""
    return np.stack([resize(decode_image(Path(p).read_bytes(), str(p)), size, policy) for p in paths])


def psnr(reference: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Per-image PSNR in dB of uint8 (N, H, W, C) images against a reference; inf where identical."""
    diff = reference.astype(np.float64) - test.astype(np.float64)
    mse = (diff**2).reshape(len(diff), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0**2 / mse)


def roundtrip_psnr(tokenizer: Tokenizer, images: np.ndarray) -> np.ndarray:
    """PSNR of decode(encode(images)) against images, one value per image."""
    return psnr(images, tokenizer.decode(tokenizer.encode(images)))


def inspect_tokenizer(tokenizer: Tokenizer, photo_paths: list[Path] | None = None) -> Inspection:
    """Describe `tokenizer` and measure its round trip on `photo_paths` (default: the held-out photos)."""
    paths = list(photo_paths) if photo_paths is not None else photos("heldout")
    values = roundtrip_psnr(tokenizer, load_photos(paths, tokenizer.image_size)) if paths else []
    return Inspection(
        name=tokenizer.name,
        format=tokenizer.format,
        config=tokenizer.config.to_dict(),
        num_parameters=tokenizer.num_parameters,
        fingerprint=tokenizer.fingerprint,
        codebook_size=tokenizer.codebook_size,
        tokens_per_image=tokenizer.tokens_per_image,
        image_size=tokenizer.image_size,
        input_range=tokenizer.input_range,
        files=[str(p) for p in tokenizer.files],
        notes=list(tokenizer.notes),
        psnr={Path(p).name: float(v) for p, v in zip(paths, values, strict=True)},
    )


def format_inspection(report: Inspection) -> str:
    """Human-readable lines for the CLI."""
    config = ", ".join(f"{k}={v}" for k, v in report.config.items())
    lines = [
        f"tokenizer:        {report.name}",
        f"format:           {report.format}",
        f"files:            {', '.join(report.files)}",
        f"config:           {config}",
        f"parameters:       {report.num_parameters:,}",
        f"fingerprint:      {report.fingerprint}",
        f"codebook size:    {report.codebook_size}",
        f"tokens per image: {report.tokens_per_image} ({report.image_size}x{report.image_size} input)",
        f"input range:      [{report.input_range[0]:g}, {report.input_range[1]:g}]",
    ]
    lines += [f"note:             {note}" for note in report.notes]
    for name, value in report.psnr.items():
        lines.append(f"round-trip PSNR:  {_db(value)}  {name} (squash to {report.image_size})")
    if report.psnr:
        lines.append(f"mean PSNR:        {_db(report.mean_psnr)} over {len(report.psnr)} held-out photos")
    return "\n".join(lines)


def _db(value: float) -> str:
    return "inf dB" if math.isinf(value) else f"{value:.2f} dB"
