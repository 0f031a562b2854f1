"""Checkpoint layouts users have on disk, each mapped onto our VQGAN's parameter names.

The format is picked by what the location holds:
- open-muse / LVM folder: config.json (`VQGANModel` keys) + *.safetensors or pytorch_model.bin;
- taming-transformers: a Lightning `.ckpt` + its config.yaml (see taming.py);
- diffusers `VQModel` folder: config.json + diffusion_pytorch_model.safetensors (see diffusers_vq.py).
A format knows its own input range, so callers never rescale pixels themselves.
"""

from __future__ import annotations

from pathlib import Path

from lvm_data.tokenizer import diffusers_vq, taming
from lvm_data.tokenizer.checkpoint import UNIT_RANGE, Checkpoint, one_file, read_json
from lvm_data.tokenizer.model import VQGANConfig
from lvm_data.tokenizer.weights import CheckpointError, read_state_dict

__all__ = ["Checkpoint", "FORMATS", "detect_format", "load_checkpoint", "load_muse"]


def load_muse(folder: Path) -> Checkpoint:
    """open-muse / LVM folder: config.json (`VQGANModel`) + *.safetensors or pytorch_model.bin. Input [0, 1]."""
    config = VQGANConfig.from_dict(read_json(folder / "config.json"))
    weights = _muse_weights_file(folder)
    notes = [f"config keys not modelled, ignored: {', '.join(sorted(config.extra))}"] if _unknown(config) else []
    return Checkpoint(
        "open-muse", config, read_state_dict(weights), UNIT_RANGE, [folder / "config.json", weights], notes
    )


def _unknown(config: VQGANConfig) -> bool:
    return bool(set(config.extra) - {"_class_name", "_version", "_diffusers_version"})


def _muse_weights_file(folder: Path) -> Path:
    weights = one_file(folder, "*.safetensors", ".safetensors")
    if weights is None and (folder / "pytorch_model.bin").is_file():
        weights = folder / "pytorch_model.bin"
    if weights is None:
        raise CheckpointError(
            f"{folder}: no weights found; expected model.safetensors or pytorch_model.bin beside config.json"
        )
    return weights


def is_muse(path: Path) -> bool:
    if not (path.is_dir() and (path / "config.json").is_file()):
        return False
    raw = read_json(path / "config.json")
    return raw.get("_class_name") == "VQGANModel" or "hidden_channels" in raw


FORMATS = [
    ("open-muse", is_muse, load_muse),
    ("diffusers", diffusers_vq.is_diffusers_vq, diffusers_vq.load_diffusers_vq),
    ("taming", taming.is_taming, taming.load_taming),
]


def detect_format(path: Path) -> str:
    """The name of the format that `path` (a folder, or a .ckpt file) holds."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or folder")
    for name, matches, _load in FORMATS:
        if matches(path):
            return name
    raise CheckpointError(
        f"{path}: not a known checkpoint layout. Expected one of: an open-muse/LVM folder (config.json with "
        "hidden_channels + model.safetensors or pytorch_model.bin); a taming-transformers checkpoint (a .ckpt "
        "file + its config.yaml, or a folder holding them); a diffusers VQModel folder (config.json with "
        "_class_name VQModel + diffusion_pytorch_model.safetensors)"
    )


def load_checkpoint(path: Path) -> Checkpoint:
    """Pick the format by what the location holds and load it."""
    name = detect_format(path)
    load = next(load for fmt, _matches, load in FORMATS if fmt == name)
    return load(Path(path))
