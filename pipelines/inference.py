"""Our RunInference ModelHandler around the lvm_data tokenizer (STYLE rule 9).

Elements are `Pending` sentences; batches are formed by frame count across sentences (a batch holds
up to `frames_per_batch` images, a longer sentence gets a batch of its own); `run_inference` calls
`lvm_data.process.tokenize`, which encodes the whole batch at once and on failure retries sentence
by sentence, so one bad sentence never fails its neighbours. The device is never downgraded: an
explicit 'cuda' without a GPU fails at load with a message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from apache_beam.ml.inference.base import ModelHandler

from lvm_data import tokenizer as lvm_tokenizer
from lvm_data.process import Pending, Tokenized, tokenize


def frames_of(pending: Pending) -> int:
    """BatchElements weight of an element: its number of images."""
    return pending.n_images


class TokenizerHandler(ModelHandler[Pending, Tokenized, Any]):
    def __init__(self, uri: str, *, device: str = "auto", dtype: str = "auto", frames_per_batch: int = 32,
                 compile: bool | str = "auto", copies: int | None = None):
        super().__init__()
        self._uri = uri
        self._device = device
        self._dtype = dtype
        self._frames = frames_per_batch
        self._compile = compile
        self._copies = copies

    def load_model(self):
        return lvm_tokenizer.load(self._uri, device=self._device, dtype=self._dtype, batch_size=self._frames,
                                  compile=self._compile)

    def run_inference(self, batch: Sequence[Pending], model, inference_args: dict | None = None) -> Iterable[Tokenized]:
        return tokenize(model, list(batch))

    def batch_elements_kwargs(self) -> dict[str, Any]:
        return {"min_batch_size": self._frames, "max_batch_size": self._frames, "element_size_fn": frames_of}

    def get_num_bytes(self, batch: Sequence[Pending]) -> int:
        return sum(f.pixels.nbytes for p in batch for f in p.sentence.frames)

    def get_metrics_namespace(self) -> str:
        return "lvm_data.tokenize"

    def share_model_across_processes(self) -> bool:
        """On a GPU, worker processes share `model_copies()` copies instead of one each."""
        on_gpu = self._device.startswith("cuda") or (self._device == "auto" and torch.cuda.is_available())
        return on_gpu or self._copies is not None

    def model_copies(self) -> int:
        return self._copies or 1
