"""Where checkpoints live: local paths, builtin:NAME, gs://bucket/prefix and hf://org/name[@revision][/subfolder].

Remote checkpoints are copied into a cache folder (the `cache_dir` argument, else $LVM_DATA_CACHE,
else ~/.cache/lvm-data), under tokenizers/, and reused on the next load (remote.py).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from lvm_data.tokenizer import remote
from lvm_data.tokenizer.weights import CheckpointError

BUILTIN_PREFIX = "builtin:"
CACHE_ENV = "LVM_DATA_CACHE"


def builtin_dir(name: str) -> Path:
    folder = Path(str(resources.files("lvm_data.tokenizer") / "builtin" / name))
    if not folder.is_dir():
        raise CheckpointError(
            f"{BUILTIN_PREFIX}{name}: no such builtin tokenizer; available: {', '.join(list_builtin()) or 'none'}"
        )
    return folder


def list_builtin() -> list[str]:
    root = Path(str(resources.files("lvm_data.tokenizer") / "builtin"))
    return sorted(p.name for p in root.iterdir() if (p / "config.json").exists()) if root.is_dir() else []


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The lvm-data cache folder: `cache_dir`, else $LVM_DATA_CACHE, else ~/.cache/lvm-data."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lvm-data"


def resolve(uri: str, cache_dir: str | Path | None = None) -> Path:
    """A local folder or file holding the checkpoint named by `uri`, downloading remote ones first."""
    if uri.startswith(BUILTIN_PREFIX):
        return builtin_dir(uri[len(BUILTIN_PREFIX) :])
    if uri.startswith(remote.GS):
        return remote.fetch_gcs(uri, cache_root(cache_dir) / "tokenizers")
    if uri.startswith(remote.HF):
        return remote.fetch_hf(uri, cache_root(cache_dir) / "tokenizers")
    if "://" in uri:
        raise CheckpointError(
            f"{uri}: unsupported location scheme; use a local path, gs://bucket/prefix, "
            "hf://org/name[@revision][/subfolder] or builtin:NAME"
        )
    return Path(uri).expanduser()
