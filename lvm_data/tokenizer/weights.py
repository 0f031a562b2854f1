"""Read checkpoint weights without ever running code from the file.

safetensors files are read directly; torch files (`pytorch_model.bin`, zip or legacy format) go
through `torch.load(weights_only=True)`, whose unpickler only rebuilds tensors and plain containers.
Lightning `.ckpt` files carry more than weights and have their own reader (`lightning.py`).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and what to do."""


ZIP_MAGIC = b"PK\x03\x04"
LEGACY_MAGIC = b"\x80\x02\x8a\x0a"  # pickle protocol 2 + the LONG1 magic number torch's legacy format starts with
CONVERT_HINT = "convert it in a trusted environment: `safetensors.torch.save_file(state_dict, 'model.safetensors')`"


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors by name from a .safetensors file or a torch file; anything but tensors is refused."""
    path = Path(path)
    check_file(path)
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    return read_torch_file(path)


def check_file(path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: weights file is empty; download it again")


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({first_line(err)}); the file may be truncated, download it again"
        ) from err


def read_torch_file(path: Path) -> dict[str, torch.Tensor]:
    """A `torch.save`d mapping of tensors (a Lightning-style {'state_dict': ...} is unwrapped)."""
    with path.open("rb") as f:
        head = f.read(4)
    if head == ZIP_MAGIC and not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: truncated torch zip file (no central directory); download it again")
    if head not in (ZIP_MAGIC, LEGACY_MAGIC):
        raise CheckpointError(
            f"{path}: not a torch checkpoint (starts with {head!r}); expected a torch.save file or a .safetensors file"
        )
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        what = f"it references {found.group(1)}" if found else first_line(err)
        raise CheckpointError(
            f"{path}: refused: the file holds pickled objects other than tensors ({what}). Loading it could run "
            f"arbitrary code, and nothing from it was run; {CONVERT_HINT}"
        ) from err
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as err:
        raise CheckpointError(
            f"{path}: unreadable torch checkpoint ({first_line(err)}); the file may be truncated, download it again"
        ) from err
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a mapping of parameter names to tensors, got {type(obj).__name__}")
    return dict(obj)


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
