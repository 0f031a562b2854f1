"""Where checkpoints live: local paths and the checkpoints shipped inside the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from lvm_data.tokenizer.weights import CheckpointError

BUILTIN_PREFIX = "builtin:"


def builtin_dir(name: str) -> Path:
    folder = Path(str(resources.files("lvm_data.tokenizer") / "builtin" / name))
    if not folder.is_dir():
        raise CheckpointError(f"{BUILTIN_PREFIX}{name}: no such builtin tokenizer; available: "
                              f"{', '.join(list_builtin()) or 'none'}")
    return folder


def list_builtin() -> list[str]:
    root = Path(str(resources.files("lvm_data.tokenizer") / "builtin"))
    return sorted(p.name for p in root.iterdir() if (p / "config.json").exists()) if root.is_dir() else []


def resolve(uri: str) -> Path:
    """A local folder or file holding the checkpoint named by `uri`."""
    if uri.startswith(BUILTIN_PREFIX):
        return builtin_dir(uri[len(BUILTIN_PREFIX):])
    if "://" in uri:
        raise CheckpointError(f"{uri}: unsupported location scheme; use a local path or builtin:NAME")
    return Path(uri).expanduser()
