"""Checkpoint layouts users have on disk, each mapped onto our VQGAN's parameter names.

A format knows its own input range, so callers never rescale pixels themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from lvm_data.tokenizer.model import VQGANConfig
from lvm_data.tokenizer.weights import CheckpointError, read_state_dict

UNIT_RANGE = (0.0, 1.0)  # open-muse / LVM
SIGNED_RANGE = (-1.0, 1.0)  # taming-transformers


@dataclass
class Checkpoint:
    """What a format loader returns: everything needed to build a ready tokenizer."""

    format: str
    config: VQGANConfig
    state_dict: dict[str, torch.Tensor]
    input_range: tuple[float, float]
    files: list[Path]


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: unreadable JSON ({err})") from err


def load_muse(folder: Path) -> Checkpoint:
    """open-muse / LVM folder: config.json (`VQGANModel`) + *.safetensors or pytorch_model.bin."""
    config = VQGANConfig.from_dict(read_json(folder / "config.json"))
    weights = _muse_weights_file(folder)
    return Checkpoint("open-muse", config, read_state_dict(weights), UNIT_RANGE,
                      [folder / "config.json", weights])


def _muse_weights_file(folder: Path) -> Path:
    safetensors = sorted(folder.glob("*.safetensors"))
    if len(safetensors) > 1:
        raise CheckpointError(f"{folder}: several .safetensors files ({', '.join(p.name for p in safetensors)}); "
                              "keep one")
    if safetensors:
        return safetensors[0]
    if (folder / "pytorch_model.bin").exists():
        return folder / "pytorch_model.bin"
    raise CheckpointError(f"{folder}: no weights found; expected model.safetensors or pytorch_model.bin "
                          "beside config.json")


def is_muse(folder: Path) -> bool:
    if not (folder / "config.json").is_file():
        return False
    raw = read_json(folder / "config.json")
    return raw.get("_class_name") == "VQGANModel" or "hidden_channels" in raw


FORMATS = [("open-muse", is_muse, load_muse)]


def load_checkpoint(path: Path) -> Checkpoint:
    """Pick the format by what the location holds and load it."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or folder")
    for _name, matches, load in FORMATS:
        if matches(path):
            return load(path)
    raise CheckpointError(
        f"{path}: not a known checkpoint layout. Expected an open-muse/LVM folder (config.json with "
        "hidden_channels + model.safetensors or pytorch_model.bin)")
