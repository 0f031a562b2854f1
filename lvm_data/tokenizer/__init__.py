"""The LVM VQGAN tokenizer: `load(uri)` -> `Tokenizer` with encode/decode."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from lvm_data.tokenizer.formats import load_checkpoint
from lvm_data.tokenizer.locations import resolve
from lvm_data.tokenizer.standin import PREFIX as STANDIN_PREFIX
from lvm_data.tokenizer.standin import StandInTokenizer
from lvm_data.tokenizer.tokenizer import Tokenizer
from lvm_data.tokenizer.weights import CheckpointError

__all__ = ["CheckpointError", "Tokenizer", "load"]


def load(
    uri: str,
    device: str = "auto",
    dtype: str = "float32",
    *,
    batch_size: int = 32,
    compile: bool | str = False,
    channels_last: bool = False,
    cache_dir: str | Path | None = None,
) -> Tokenizer:
    """Load a tokenizer from a local path, gs://bucket/prefix, hf://org/name[@rev][/sub] or builtin:NAME.

    The format (open-muse/LVM, taming-transformers, diffusers VQModel) is detected from the files;
    remote checkpoints are downloaded once into `cache_dir` (default $LVM_DATA_CACHE or ~/.cache/lvm-data).
    Raises CheckpointError with the file and the fix when the checkpoint cannot be used.
    `standin:RATE` is the benchmark's device stand-in (lvm_data.tokenizer.standin): it sleeps instead of computing.
    """
    if uri.startswith(STANDIN_PREFIX):
        return cast(Tokenizer, StandInTokenizer(uri, batch_size=batch_size))  # duck-typed: the same interface
    local = resolve(uri, cache_dir=cache_dir)
    return Tokenizer(
        load_checkpoint(local),
        name=uri,
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        compile=compile,
        channels_last=channels_last,
    )
