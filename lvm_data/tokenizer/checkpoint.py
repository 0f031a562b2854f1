"""What every checkpoint format loader returns, and helpers the loaders share."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lvm_data.tokenizer.model import VQGANConfig
from lvm_data.tokenizer.weights import CheckpointError

UNIT_RANGE = (0.0, 1.0)  # open-muse / LVM, aMUSEd
SIGNED_RANGE = (-1.0, 1.0)  # taming-transformers


@dataclass
class Checkpoint:
    """A checkpoint mapped onto our VQGAN: config, weights under our parameter names, conventions.

    `input_range` is the pixel range the network expects (uint8 / 255 is mapped onto it);
    `notes` say what the loader decided or ignored, for `lvm-data tokenizer inspect`.
    """

    format: str
    config: VQGANConfig
    state_dict: dict[str, torch.Tensor]
    input_range: tuple[float, float]
    files: list[Path]
    notes: list[str] = field(default_factory=list)


def read_json(path: Path) -> dict:
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: unreadable JSON ({err})") from err
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    return raw


def one_file(folder: Path, pattern: str, what: str) -> Path | None:
    """The single file matching `pattern` in `folder`, None when there is none; several is an error."""
    found = sorted(p for p in folder.glob(pattern) if p.is_file())
    if len(found) > 1:
        raise CheckpointError(
            f"{folder}: several {what} files ({', '.join(p.name for p in found)}); keep one, "
            "or point at the one you mean"
        )
    return found[0] if found else None
