"""Small, fast stand-ins for tests and benchmarks: a tiny VQGAN checkpoint and a corpus of real photos
with broken files beside them. Nothing here downloads anything.

`write_tiny_checkpoint` writes an open-muse folder (config.json + model.safetensors) with random
weights whose codebook rows are encoder outputs of synthetic images, so codes vary with the input
(a random codebook would map every position to the same code) and are fast to compute on a CPU.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from lvm_data.media import samples
from lvm_data.tokenizer.model import VQGAN, VQGANConfig

TINY_CONFIG = {
    "_class_name": "VQGANModel",
    "resolution": 32,
    "hidden_channels": 32,
    "channel_mult": [1, 1, 1],
    "num_res_blocks": 1,
    "z_channels": 8,
    "quantized_embed_dim": 8,
    "num_embeddings": 256,
    "attn_resolutions": [],
    "no_attn_mid_block": True,
}


def write_tiny_checkpoint(folder: str | Path, seed: int = 0, **overrides) -> Path:
    """A tiny open-muse checkpoint in `folder` (default 32px, 8x8 = 64 tokens/image, 256 codes)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    raw = {**TINY_CONFIG, **overrides}
    config = VQGANConfig.from_dict(raw)
    generator = torch.Generator().manual_seed(seed)
    torch_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)  # module init draws from the global generator; restored below
        model = VQGAN(config).eval()
    finally:
        torch.random.set_rng_state(torch_state)
    size = config.resolution
    images = torch.rand((8, 3, size, size), generator=generator)  # (8, 3, S, S) in [0, 1]
    images = torch.nn.functional.avg_pool2d(images, 5, 1, 2)  # smooth: closer to photos than white noise
    with torch.no_grad():
        latents = model.latents(images).permute(0, 2, 3, 1).reshape(-1, config.quantized_embed_dim)
        pick = torch.randperm(len(latents), generator=generator)[: config.num_embeddings]
        rows = (
            latents[pick]
            if len(pick) == config.num_embeddings
            else latents[torch.arange(config.num_embeddings) % len(latents)]
        )
        model.quantize.embedding.weight.copy_(rows + 0.01 * torch.randn(rows.shape, generator=generator))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(raw, indent=2, sort_keys=True))
    return folder


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims `width` x `height` pixels but holds almost no data (a decompression bomb header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


def _zero_middle(data: bytes, length: int = 64) -> bytes:
    """The file with `length` bytes zeroed in its middle: the header is intact, the pixel data is not."""
    middle = len(data) // 2
    return data[:middle] + bytes(length) + data[middle + length :]


BROKEN_FILES = {  # name -> (bytes maker, expected ledger reason)
    "empty.png": (lambda photo: b"", "empty_file"),
    "notes.jpg": (lambda photo: b"these are notes, not an image\n", "not_media"),
    "truncated.png": (lambda photo: photo[: len(photo) // 2], "truncated"),
    "corrupt.png": (lambda photo: _zero_middle(photo), "decode_error"),
    "huge.png": (lambda photo: png_header_only(100_000, 100_000), "too_large"),
}


def write_corpus(folder: str | Path, photos: list[Path] | None = None, broken: bool = True) -> dict[str, str]:
    """Copy real photos (default: the held-out sample photos) into `folder`, plus broken files.

    Returns file name -> expected ledger reason ("ok" for the photos).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    photos = samples.photos("heldout") if photos is None else photos
    expected = {}
    for path in photos:
        (folder / path.name).write_bytes(path.read_bytes())
        expected[path.name] = "ok"
    if broken:
        png = next(p for p in photos if p.suffix == ".png").read_bytes()
        for name, (make, reason) in BROKEN_FILES.items():
            (folder / name).write_bytes(make(png))
            expected[name] = reason
    return expected


def write_tar(path: str | Path, members: list[tuple[str, bytes]]) -> Path:
    """A plain tar of (member name, bytes), in order (a webdataset shard when the names follow its convention)."""
    import io
    import tarfile

    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return Path(path)


def uint8_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random RGB image (H, W, 3) uint8."""
    small = rng.integers(0, 256, size=(max(1, height // 8), max(1, width // 8), 3), dtype=np.uint8)
    return np.kron(small, np.ones((8, 8, 1), dtype=np.uint8))[:height, :width]


def job_text(name: str, output: str | Path, tokenizer: str | Path, sources: list[dict], **top) -> str:
    """A job file's YAML for tests and benchmarks; `sources` are `sources:` entries."""
    import yaml

    raw = {"name": name, "output": str(output), "tokenizer": str(tokenizer), **top, "sources": sources}
    return yaml.safe_dump(raw, sort_keys=False)


def images_source(name: str, paths, template: str | dict = "single", **input_options) -> dict:
    return {
        "name": name,
        "input": {"format": "images", "paths": [str(p) for p in _as_list(paths)], **input_options},
        "template": template,
    }


def _as_list(paths) -> list:
    return list(paths) if isinstance(paths, list | tuple) else [paths]


class ZeroStream(io.RawIOBase):
    """`size` zero bytes, read in pieces (a huge tar member or file written without holding it in memory)."""

    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n
