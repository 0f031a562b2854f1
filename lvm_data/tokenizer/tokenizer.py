"""`Tokenizer`: images (uint8 RGB) <-> VQGAN codes (uint16), batched, on any device."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging

import numpy as np
import torch

from lvm_data.tokenizer.checkpoint import UNIT_RANGE, Checkpoint
from lvm_data.tokenizer.cpu import emulated_bf16_warning
from lvm_data.tokenizer.model import VQGAN
from lvm_data.tokenizer.weights import CheckpointError

DTYPES = ("float32", "bfloat16")
log = logging.getLogger(__name__)


def fingerprint(checkpoint: Checkpoint) -> str:
    """sha256 over the canonical config and every tensor (name, dtype, shape, bytes) in name order.

    An input range other than [0, 1] is hashed too: the same weights fed [-1, 1] are another tokenizer.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(checkpoint.config.to_dict(), sort_keys=True).encode())
    if tuple(checkpoint.input_range) != UNIT_RANGE:
        digest.update(f"input_range:{list(checkpoint.input_range)}".encode())
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
        raise RuntimeError(
            f"device {device!r} was asked for but CUDA is not available here; use device='cpu' or 'auto'"
        )
    return dev


@contextlib.contextmanager
def float32_precision(mode: str):
    """CUDA float32 matmul and convolution precision ('ieee' or 'tf32') while the block runs, then the
    caller's setting. Process-wide while it lasts (torch has no per-call switch)."""
    # torch swaps torch.backends.cudnn for a CudnnModule instance in sys.modules; the checker sees the plain module
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv  # pyright: ignore[reportAttributeAccessIssue]
    saved = (matmul.fp32_precision, conv.fp32_precision)
    matmul.fp32_precision = conv.fp32_precision = mode
    try:
        yield
    finally:
        matmul.fp32_precision, conv.fp32_precision = saved


def ieee_float32(device: torch.device):
    """float32 without TF32 on CUDA while the block runs.

    cuDNN convolutions use TF32 by default on Ampere and later; that moves latents by ~1e-3, enough to
    change codes, and the reference codes are IEEE float32.
    """
    return float32_precision("ieee") if device.type == "cuda" else contextlib.nullcontext()


def _warn_if_bf16_is_emulated(device: torch.device, dtype: str) -> None:
    """bfloat16 on a CPU without oneDNN's bf16 kernels encodes more than 100x slower: a job or bench says why."""
    if device.type != "cpu" or dtype != "bfloat16":
        return
    warning = emulated_bf16_warning(
        "dtype bfloat16",
        "more than 100x slower than float32 (builtin:tiny, batch 1, one thread of an AVX2 machine: 109 s an image "
        "against 0.62); encode here in float32 (or auto)",
    )
    if warning:
        log.warning(warning)


class Tokenizer:
    """A loaded VQGAN with its conventions (input range, image size) attached.

    encode: uint8 (N, S, S, 3) RGB -> uint16 (N, tokens_per_image), raster order (index = row * side + col).
    decode: codes (N, tokens_per_image) -> uint8 (N, S, S, 3) RGB, clipped and rounded half up.
    Both chunk by `batch_size`, so any N works. dtype 'bfloat16' runs the convolutions under autocast;
    the nearest-code search is always float32; 'auto' means bfloat16 on CUDA, float32 elsewhere.
    `compile` (True, 'auto' = on CUDA only, or a torch.compile backend name) compiles
    the encoder only, and pads the last chunk to `batch_size` so one graph serves every call.
    `channels_last` is meant for CUDA convolutions; on CPU, GroupNorm's channels-last kernel is less
    precise (fixture latents move by up to ~1e-2 instead of ~3e-5), enough to change codes with small margins.
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        *,
        name: str,
        device: str = "auto",
        dtype: str = "float32",
        batch_size: int = 32,
        compile: bool | str = False,
        channels_last: bool = False,
    ):
        if dtype not in (*DTYPES, "auto"):
            raise ValueError(f"dtype {dtype!r} is not supported; use one of {', '.join(DTYPES)} or 'auto'")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if checkpoint.config.num_embeddings > 65536:
            raise CheckpointError(f"{name}: {checkpoint.config.num_embeddings} codes do not fit uint16 tokens")
        self.name, self.format, self.config = name, checkpoint.format, checkpoint.config
        lo, hi = checkpoint.input_range
        self.input_range = (lo, hi)
        self.files, self.notes = list(checkpoint.files), list(checkpoint.notes)
        self.fingerprint = fingerprint(checkpoint)
        self.device = resolve_device(device)
        on_gpu = self.device.type == "cuda"
        if dtype == "auto":  # DESIGN: bf16 + compiled on GPU; exact float32 elsewhere
            dtype = "bfloat16" if on_gpu else "float32"
        if compile == "auto":
            compile = on_gpu
        self.dtype, self.batch_size, self.channels_last = dtype, batch_size, channels_last
        _warn_if_bf16_is_emulated(self.device, dtype)
        model = VQGAN(checkpoint.config)
        _load_strict(model, checkpoint)
        model = model.eval().requires_grad_(False).to(self.device)
        self._memory_format = torch.channels_last if channels_last else torch.contiguous_format
        # Module.to takes memory_format (torch parses it with the tensor's .to); its typed overloads leave it out
        self.model = model.to(memory_format=self._memory_format)  # pyright: ignore[reportCallIssue]
        self.compiled = compile is not False
        if compile is not False:  # self.compiled
            backend = "inductor" if compile is True else compile
            self._encoder = torch.compile(self.model.latents, backend=backend, dynamic=False)
        else:
            self._encoder = self.model.latents
        self._slots: list[_Slot] = []  # CUDA: pinned host buffers of the batches in flight (encode_start)
        self._turn = 0

    @property
    def asynchronous(self) -> bool:
        """Whether `encode_start` returns before the batch is done (on CUDA), so batches can overlap."""
        return self.device.type == "cuda"

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

    def runs_on(self) -> str:
        """Where and how codes are made, for the manifest: 'cpu', 'cuda:0 (bfloat16)'. A method, not an
        attribute, so that it also answers through Beam's cross-process model proxy."""
        return str(self.device) if self.dtype == "float32" else f"{self.device} ({self.dtype})"

    def encode(self, images: np.ndarray) -> np.ndarray:
        images = self._check_images(images)
        out = np.empty((len(images), self.tokens_per_image), dtype=np.uint16)
        for start in range(0, len(images), self.batch_size):
            out[start : start + self.batch_size] = self._encode_batch(images[start : start + self.batch_size])
        return out

    def encode_start(self, images: np.ndarray) -> EncodeJob:
        """Start encoding one batch; `.result()` waits for its codes (what `encode` returns).

        On CUDA, for at most `batch_size` images, this returns as soon as the work is queued: the frames are
        copied into a pinned host buffer and sent to the device on a copy stream of their own, the compute
        queues behind the previous batch, and the codes come back into pinned memory. So the caller builds
        the next batch while this one computes. At most two jobs may be unfinished at once (the buffers are a
        ring of two). Elsewhere the batch is encoded before this returns.
        """
        images = self._check_images(images)
        if self.device.type != "cuda" or len(images) > self.batch_size:
            return _Done(self.encode(images))
        return self._encode_async(images)

    @torch.inference_mode()
    def _encode_async(self, images: np.ndarray) -> EncodeJob:
        if not self._slots:
            shape = (self.batch_size, self.image_size, self.image_size, 3)
            self._slots = [
                _Slot(
                    torch.empty(shape, dtype=torch.uint8, pin_memory=True),
                    torch.empty((self.batch_size, self.tokens_per_image), dtype=torch.int32, pin_memory=True),
                )
                for _ in range(2)
            ]
            self._copy_stream = torch.cuda.Stream(self.device)
        slot = self._slots[self._turn % len(self._slots)]
        self._turn += 1
        if slot.done is not None:
            slot.done.synchronize()  # the batch that used this buffer two calls ago has finished
        n = len(images)
        rows = self.batch_size if self.compiled else n  # compiled: one shape for every call
        host = slot.frames[:rows]
        host[:n].numpy()[...] = images
        if rows > n:
            host[n:].zero_()
        compute = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self._copy_stream):
            frames = host.to(self.device, non_blocking=True)  # (rows, S, S, 3) uint8
        compute.wait_stream(self._copy_stream)
        frames.record_stream(compute)  # allocated on the copy stream, used on the compute stream
        x = frames.permute(0, 3, 1, 2).float() / 255.0  # (rows, 3, S, S) in [0, 1]
        lo, hi = self.input_range
        x = (x * (hi - lo) + lo).contiguous(memory_format=self._memory_format)
        with ieee_float32(self.device):
            with self._autocast():
                z = self._encoder(x)  # (rows, D, S/f, S/f)
            codes = self.model.quantize.nearest(z[:n].float())  # (n, tokens), distances in float32
        slot.codes[:n].copy_(codes.to(torch.int32), non_blocking=True)
        slot.done = torch.cuda.Event()
        slot.done.record(compute)
        return _CudaJob(slot, n)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.tokens_per_image:
            raise ValueError(f"{self.name}: codes must be (N, {self.tokens_per_image}), got {codes.shape}")
        if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(
                f"{self.name}: codes must lie in 0..{self.codebook_size - 1}, "
                f"got {int(codes.min())}..{int(codes.max())}"
            )
        size = self.image_size
        out = np.empty((len(codes), size, size, 3), dtype=np.uint8)
        for start in range(0, len(codes), self.batch_size):
            out[start : start + self.batch_size] = self._decode_batch(codes[start : start + self.batch_size])
        return out

    @torch.inference_mode()
    def _encode_batch(self, images: np.ndarray) -> np.ndarray:
        n = len(images)
        if self.compiled and n < self.batch_size:  # same shape every call: no recompilation
            images = np.concatenate([images, np.zeros((self.batch_size - n, *images.shape[1:]), np.uint8)])
        if not images.flags.writeable:  # torch.from_numpy warns on read-only memory (np.frombuffer, decoded bytes)
            images = images.copy()
        x = torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).float() / 255.0  # (n, 3, S, S) in [0, 1]
        lo, hi = self.input_range
        x = x * (hi - lo) + lo  # (n, 3, S, S) in the model's range
        # The permuted view is channels-last in memory; left so, CPU GroupNorm takes its channels-last kernel,
        # which moves latents by ~1e-2 where NCHW stays within ~1e-5. Channels-last only when asked for.
        x = x.contiguous(memory_format=self._memory_format)
        with ieee_float32(self.device):
            with self._autocast():
                z = self._encoder(x)  # (n, D, S/f, S/f)
            codes = self.model.quantize.nearest(z[:n].float())  # (n, tokens), distances in float32
        return codes.to(torch.int32).cpu().numpy().astype(np.uint16)

    @torch.inference_mode()
    def _decode_batch(self, codes: np.ndarray) -> np.ndarray:
        c = torch.from_numpy(codes.astype(np.int64)).to(self.device)
        with ieee_float32(self.device), self._autocast():
            y = self.model.decode(c).float()  # (n, 3, S, S) in the model's range
        lo, hi = self.input_range
        y = ((y - lo) / (hi - lo)).clamp(0, 1)  # (n, 3, S, S) in [0, 1]
        return torch.floor(y * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def _autocast(self):
        if self.dtype == "bfloat16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _check_images(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        size = self.image_size
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (size, size, 3):
            raise ValueError(
                f"{self.name}: encode takes uint8 RGB images of shape (N, {size}, {size}, 3), "
                f"got {images.dtype} {images.shape}; preprocess with lvm_data.media.resize"
            )
        return np.ascontiguousarray(images)


class EncodeJob:
    """A batch being encoded (`Tokenizer.encode_start`)."""

    def result(self) -> np.ndarray:
        raise NotImplementedError


class _Done(EncodeJob):
    def __init__(self, codes: np.ndarray):
        self._codes = codes

    def result(self) -> np.ndarray:
        return self._codes


class _Slot:
    """Pinned host memory of one batch in flight: its frames, its codes, and the event that ends its work."""

    def __init__(self, frames: torch.Tensor, codes: torch.Tensor):
        self.frames, self.codes = frames, codes
        self.done: torch.cuda.Event | None = None


class _CudaJob(EncodeJob):
    def __init__(self, slot: _Slot, n: int):
        self._slot, self._n = slot, n

    def result(self) -> np.ndarray:
        assert self._slot.done is not None, "encode_start records the event before it returns the job"
        self._slot.done.synchronize()
        return self._slot.codes[: self._n].numpy().astype(np.uint16)  # a copy: the buffer is reused


def _load_strict(model: VQGAN, checkpoint: Checkpoint) -> None:
    """Load with a readable error listing missing, unexpected and mis-shaped keys."""
    ours = model.state_dict()
    theirs = checkpoint.state_dict
    missing = sorted(set(ours) - set(theirs))
    unexpected = sorted(set(theirs) - set(ours))
    shapes = [
        f"{k}: checkpoint {tuple(theirs[k].shape)} vs config {tuple(ours[k].shape)}"
        for k in sorted(set(ours) & set(theirs))
        if theirs[k].shape != ours[k].shape
    ]
    if missing or unexpected or shapes:
        where = ", ".join(str(p) for p in checkpoint.files)
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first: {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (first: {'; '.join(shapes[:3])})")
        raise CheckpointError(
            f"{where}: weights do not match the config: {'; '.join(parts)}. "
            "Check that the config belongs to these weights"
        )
    bad = sorted(k for k, v in theirs.items() if not v.is_floating_point())
    if bad:
        raise CheckpointError(
            f"{checkpoint.files[-1]}: {bad[0]} holds {theirs[bad[0]].dtype}, not floating point weights"
        )
    model.load_state_dict({k: v.float() for k, v in theirs.items()}, strict=True)
