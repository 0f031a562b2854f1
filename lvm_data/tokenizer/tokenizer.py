"""`Tokenizer`: images (uint8 RGB) <-> VQGAN codes (uint16), batched, on any device."""

from __future__ import annotations

import contextlib
import hashlib
import json

import numpy as np
import torch

from lvm_data.tokenizer.formats import Checkpoint
from lvm_data.tokenizer.model import VQGAN


def fingerprint(checkpoint: Checkpoint) -> str:
    """sha256 over the canonical config and every tensor (name, dtype, shape, bytes) in name order."""
    digest = hashlib.sha256()
    digest.update(json.dumps(checkpoint.config.to_dict(), sort_keys=True).encode())
    for name in sorted(checkpoint.state_dict):
        tensor = checkpoint.state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def resolve_device(device: str) -> torch.device:
    """'auto' picks CUDA when present; an explicit device that is missing is an error, never a fallback."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was asked for but CUDA is not available here; "
                           "use device='cpu' or 'auto'")
    return dev


class Tokenizer:
    """A loaded VQGAN with its conventions (input range, image size) attached.

    encode: uint8 (N, S, S, 3) RGB -> uint16 (N, tokens_per_image), raster order.
    decode: codes (N, tokens_per_image) -> uint8 (N, S, S, 3) RGB.
    """

    def __init__(self, checkpoint: Checkpoint, *, name: str, device: str = "auto", dtype: str = "float32",
                 batch_size: int = 32, compile: bool = False):
        if dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype {dtype!r} is not supported; use 'float32' or 'bfloat16'")
        self.name = name
        self.format = checkpoint.format
        self.config = checkpoint.config
        self.input_range = checkpoint.input_range
        self.fingerprint = fingerprint(checkpoint)
        self.device = resolve_device(device)
        self.dtype = dtype
        self.batch_size = batch_size
        model = VQGAN(checkpoint.config)
        _load_strict(model, checkpoint)
        self.model = model.eval().requires_grad_(False).to(self.device)
        self._encoder = torch.compile(self.model.latents) if compile else self.model.latents
        if self.config.num_embeddings > 65536:
            raise ValueError(f"{name}: {self.config.num_embeddings} codes do not fit uint16 tokens")

    @property
    def codebook_size(self) -> int:
        return self.config.num_embeddings

    @property
    def tokens_per_image(self) -> int:
        return self.config.tokens_per_image

    @property
    def image_size(self) -> int:
        return self.config.resolution

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def encode(self, images: np.ndarray) -> np.ndarray:
        images = self._check_images(images)
        out = np.empty((len(images), self.tokens_per_image), dtype=np.uint16)
        for start in range(0, len(images), self.batch_size):
            out[start:start + self.batch_size] = self._encode_batch(images[start:start + self.batch_size])
        return out

    def decode(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.tokens_per_image:
            raise ValueError(f"codes must be (N, {self.tokens_per_image}), got {codes.shape}")
        if codes.size and int(codes.max()) >= self.codebook_size:
            raise ValueError(f"code {int(codes.max())} is out of range for a codebook of {self.codebook_size}")
        size = self.image_size
        out = np.empty((len(codes), size, size, 3), dtype=np.uint8)
        for start in range(0, len(codes), self.batch_size):
            out[start:start + self.batch_size] = self._decode_batch(codes[start:start + self.batch_size])
        return out

    @torch.inference_mode()
    def _encode_batch(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).float() / 255.0  # (n, 3, S, S) in [0, 1]
        lo, hi = self.input_range
        x = x * (hi - lo) + lo
        with self._autocast():
            z = self._encoder(x)
        codes = self.model.quantize.nearest(z.float())  # distances always in float32
        return codes.to(torch.int32).cpu().numpy().astype(np.uint16)

    @torch.inference_mode()
    def _decode_batch(self, codes: np.ndarray) -> np.ndarray:
        c = torch.from_numpy(codes.astype(np.int64)).to(self.device)
        with self._autocast():
            y = self.model.decode(c).float()  # (n, 3, S, S) in model range
        lo, hi = self.input_range
        y = ((y - lo) / (hi - lo)).clamp(0, 1)
        return torch.floor(y * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def _autocast(self):
        if self.dtype == "bfloat16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _check_images(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        size = self.image_size
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (size, size, 3):
            raise ValueError(f"{self.name}: encode takes uint8 RGB images of shape (N, {size}, {size}, 3), "
                             f"got {images.dtype} {images.shape}; preprocess with lvm_data.media.resize")
        return np.ascontiguousarray(images)


def _load_strict(model: VQGAN, checkpoint: Checkpoint) -> None:
    """Load with a readable error listing missing, unexpected and mis-shaped keys."""
    ours = model.state_dict()
    theirs = checkpoint.state_dict
    missing = sorted(set(ours) - set(theirs))
    unexpected = sorted(set(theirs) - set(ours))
    shapes = [f"{k}: checkpoint {tuple(theirs[k].shape)} vs config {tuple(ours[k].shape)}"
              for k in sorted(set(ours) & set(theirs)) if theirs[k].shape != ours[k].shape]
    if missing or unexpected or shapes:
        where = ", ".join(str(p) for p in checkpoint.files)
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first: {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (first: {'; '.join(shapes[:3])})")
        raise CheckpointError(f"{where}: weights do not match the config: {'; '.join(parts)}. "
                              "Check that config.json belongs to these weights")
    model.load_state_dict({k: v.float() for k, v in theirs.items()}, strict=True)
