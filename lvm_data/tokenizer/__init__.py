"""The LVM VQGAN tokenizer: `load(uri)` -> `Tokenizer` with encode/decode."""

from __future__ import annotations

from lvm_data.tokenizer.formats import load_checkpoint
from lvm_data.tokenizer.locations import resolve
from lvm_data.tokenizer.tokenizer import Tokenizer
from lvm_data.tokenizer.weights import CheckpointError

__all__ = ["CheckpointError", "Tokenizer", "load"]


def load(uri: str, device: str = "auto", dtype: str = "float32", *, batch_size: int = 32,
         compile: bool = False) -> Tokenizer:
    """Load a tokenizer from a local path, gs://, hf:// or builtin:NAME location."""
    local = resolve(uri)
    return Tokenizer(load_checkpoint(local), name=uri, device=device, dtype=dtype,
                     batch_size=batch_size, compile=compile)
