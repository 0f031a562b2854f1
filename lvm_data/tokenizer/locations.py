"""Where checkpoints live: local paths, builtin:NAME, gs://bucket/prefix and hf://org/name[@revision][/subfolder].

Remote checkpoints are copied into a cache folder (the `cache_dir` argument, else $LVM_DATA_CACHE,
else ~/.cache/lvm-data), under tokenizers/, and reused on the next load (remote.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from lvm_data.tokenizer.weights import CheckpointError

BUILTIN_PREFIX = "builtin:"
CACHE_ENV = "LVM_DATA_CACHE"
CHECKPOINT_SUFFIXES = (".json", ".yaml", ".yml", ".safetensors", ".bin", ".ckpt")
TAMING_SUBFOLDERS = ("checkpoints", "configs")


def builtin_dir(name: str) -> Path:
    folder = Path(str(resources.files("lvm_data.tokenizer") / "builtin" / name))
    if not folder.is_dir():
        raise CheckpointError(f"{BUILTIN_PREFIX}{name}: no such builtin tokenizer; available: "
                              f"{', '.join(list_builtin()) or 'none'}")
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
    from lvm_data.tokenizer import remote  # storage and the hub client load only for remote locations

    if uri.startswith(BUILTIN_PREFIX):
        return builtin_dir(uri[len(BUILTIN_PREFIX):])
    if uri.startswith(remote.GS):
        return remote.fetch_gcs(uri, cache_root(cache_dir) / "tokenizers")
    if uri.startswith(remote.HF):
        return remote.fetch_hf(uri, cache_root(cache_dir) / "tokenizers")
    if "://" in uri:
        raise CheckpointError(f"{uri}: unsupported location scheme; use a local path, gs://bucket/prefix, "
                              "hf://org/name[@revision][/subfolder] or builtin:NAME")
    return Path(uri).expanduser()


def select_files(names: Iterable[str]) -> list[str]:
    """Which files of a remote checkpoint folder to download (paths relative to the folder), sorted.

    Top-level files, and those in taming's checkpoints/ and configs/, with a checkpoint suffix. A .bin,
    or a variant such as x.fp16.safetensors, is skipped when x.safetensors sits beside it: the loaders
    would not read it. More than one .ckpt is an error, since loading would not know which to use.
    """
    names = sorted(n for n in names if _wanted(n))
    safetensors = {n for n in names if n.endswith(".safetensors")}
    chosen = [n for n in names if not _shadowed(n, safetensors)]
    ckpts = [n for n in chosen if n.endswith(".ckpt")]
    if len(ckpts) > 1:
        raise CheckpointError(f"several .ckpt files ({', '.join(ckpts)}); put the one you want in a folder of its "
                              "own with its config.yaml")
    return chosen


def _wanted(name: str) -> bool:
    parts = name.split("/")
    nested_ok = len(parts) == 2 and parts[0] in TAMING_SUBFOLDERS
    return (len(parts) == 1 or nested_ok) and name.endswith(CHECKPOINT_SUFFIXES)


def _shadowed(name: str, safetensors: set[str]) -> bool:
    folder = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
    if name.endswith(".bin"):
        return any(s.startswith(folder) and "/" not in s[len(folder):] for s in safetensors)
    stem = name[:-len(".safetensors")]
    if name.endswith(".safetensors") and "." in stem.rsplit("/", 1)[-1]:
        return f"{stem.rsplit('.', 1)[0]}.safetensors" in safetensors  # x.fp16.safetensors beside x.safetensors
    return False
