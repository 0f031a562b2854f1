"""A device stand-in: a tokenizer that takes `batch / rate` seconds per call without using the CPU.

`load("standin:RATE")` (RATE in images per second, e.g. `standin:150`) gives an object with the
tokenizer's interface and LVM's shape (256x256 input, 256 codes per image, 8,192 codes). It behaves as
a device with a queue: `encode_start` queues a batch that keeps the device busy `len(images) / RATE`
seconds after the batches before it and returns at once, as a CUDA launch does; `result()` sleeps
(releasing the GIL, no CPU) until the batch is done; `encode` is both. The codes are read off the
pixels: for each of the 16x16 cells, the centre pixel's colour quantised to 5-5-3 bits (13 bits:
0..8191), so they are deterministic, differ between images, and cost almost nothing.

It exists to measure overlap on machines without a GPU: a pipeline whose decode, encode and write
overlap runs at the stand-in's rate when the CPUs can decode faster than it; one whose stages run
one after another runs at the harmonic sum of the two. `decode` paints each cell with its code's
colour, so previews of a stand-in corpus show a mosaic of the inputs.

Self-contained on purpose (numpy only): the benchmark also injects it into older checkouts.
"""

from __future__ import annotations

import hashlib
import threading
import time

import numpy as np

PREFIX = "standin:"
IMAGE_SIZE = 256
GRID = 16  # cells per side: 256 tokens per image, as LVM's f=16 VQGAN
CODEBOOK = 8192  # 13 bits: 5 red, 5 green, 3 blue


class StandInError(ValueError):
    """A `standin:` location that does not name a rate."""


def parse_rate(uri: str) -> float:
    text = uri[len(PREFIX) :]
    try:
        rate = float(text)
    except ValueError:
        rate = 0.0
    if not rate > 0:
        raise StandInError(
            f"{uri}: a stand-in tokenizer is `standin:RATE` with RATE the images per second it "
            "pretends to encode (a positive number), e.g. standin:150"
        )
    return rate


class StandInTokenizer:
    """Quacks like `lvm_data.tokenizer.Tokenizer`; see the module docstring."""

    format = "standin"
    dtype = "float32"
    compiled = False
    input_range = (0.0, 1.0)
    notes: list[str] = []

    asynchronous = True  # encode_start returns before the batch is done (the encoder overlaps batches)

    def __init__(self, uri: str, batch_size: int = 32, clock=time.monotonic, sleep=time.sleep):
        self.name = uri
        self.rate = parse_rate(uri)
        self.batch_size = batch_size
        self.device = "cpu"
        self._clock, self._sleep = clock, sleep
        self._free_at = 0.0  # when the device finishes the batches queued so far
        self._lock = threading.Lock()
        # the codes do not depend on the rate: every rate is the same tokenizer
        self.fingerprint = hashlib.sha256(b"lvm-data standin tokenizer v1").hexdigest()

    codebook_size = CODEBOOK
    tokens_per_image = GRID * GRID
    image_size = IMAGE_SIZE

    def runs_on(self) -> str:
        return f"standin ({self.rate:g} images/s)"

    def encode(self, images: np.ndarray) -> np.ndarray:
        return self.encode_start(images).result()

    def encode_start(self, images: np.ndarray) -> _Queued:
        """Queue a batch on the pretend device; `.result()` waits until the device is through with it."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
            raise ValueError(
                f"{self.name}: encode takes uint8 RGB images of shape (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3), "
                f"got {images.dtype} {images.shape}"
            )
        step = IMAGE_SIZE // GRID
        centres = images[:, step // 2 :: step, step // 2 :: step, :].astype(np.uint16)  # (N, 16, 16, 3)
        codes = (centres[..., 0] >> 3) << 8 | (centres[..., 1] >> 3) << 3 | (centres[..., 2] >> 5)
        with self._lock:
            self._free_at = max(self._clock(), self._free_at) + len(images) / self.rate
            ready = self._free_at
        return _Queued(codes.reshape(len(images), GRID * GRID).astype(np.uint16), ready, self._clock, self._sleep)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.int64).reshape(-1, GRID, GRID)
        rgb = np.stack([(codes >> 8) << 3 | 4, ((codes >> 3) & 31) << 3 | 4, (codes & 7) << 5 | 16], axis=-1)
        step = IMAGE_SIZE // GRID
        return np.repeat(np.repeat(rgb, step, axis=1), step, axis=2).astype(np.uint8)


class _Queued:
    def __init__(self, codes: np.ndarray, ready: float, clock, sleep):
        self._codes, self._ready, self._clock, self._sleep = codes, ready, clock, sleep

    def result(self) -> np.ndarray:
        left = self._ready - self._clock()
        if left > 0:
            self._sleep(left)
        return self._codes
