"""Training checkpoints: one file per save under OUT/checkpoints/, then a `latest.json` pointer.

A checkpoint holds the model, optimiser, step, RNG states, every rank's data-stream position and the
configs and vocabulary facts needed to generate or export without the training command line. Files
are written atomically (lvm_data.storage) and loaded with `weights_only=True`: no code runs on load.
"""

from __future__ import annotations

import io
import json
import pickle
import re

import torch

from lvm_data import storage
from lvm_data.train.config import ModelConfig, Vocab
from lvm_data.train.model import LLaMA

FORMAT = "lvm_data.train/1"
FOLDER = "checkpoints"
LATEST = "latest.json"
_NAME = re.compile(r"step-(\d+)\.pt$")


class TrainingCheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and what to do."""


def file_name(step: int) -> str:
    return f"step-{step:08d}.pt"


def save(out: str, step: int, payload: dict, keep: int = 2) -> str:
    """Write the checkpoint for `step`, point latest.json at it, keep the newest `keep` files."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "step": step, **payload}, buffer)
    folder = storage.join(out, FOLDER)
    uri = storage.join(folder, file_name(step))
    storage.write_bytes(uri, buffer.getvalue())
    storage.write_bytes(storage.join(folder, LATEST), json.dumps({"step": step, "file": file_name(step)}).encode())
    saved = sorted(u for u in storage.list_files(folder, recursive=False) if _NAME.search(u))
    for old in saved[:-keep] if keep > 0 else []:
        storage.delete(old)
    return uri


def latest(out: str) -> str | None:
    """The newest checkpoint under a training folder, or None when it holds none."""
    pointer = storage.join(out, FOLDER, LATEST)
    if not storage.exists(pointer):
        return None
    return storage.join(out, FOLDER, json.loads(storage.read_bytes(pointer))["file"])


def resolve(ckpt: str) -> str:
    """A checkpoint file, or a training folder's latest checkpoint."""
    if ckpt.endswith(".pt"):
        if not storage.exists(ckpt):
            raise TrainingCheckpointError(f"{ckpt}: no such checkpoint file")
        return ckpt
    found = latest(ckpt)
    if found is None:
        raise TrainingCheckpointError(
            f"{ckpt}: no checkpoint here; pass a step-*.pt file or the --out folder of a training run that saved one"
        )
    return found


def load(ckpt: str, map_location: str | torch.device = "cpu") -> dict:
    uri = resolve(ckpt)
    try:
        payload = torch.load(io.BytesIO(storage.read_bytes(uri)), map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as err:
        raise TrainingCheckpointError(f"{uri}: unreadable checkpoint ({err}); use an earlier step-*.pt") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise TrainingCheckpointError(f"{uri}: not an lvm-data training checkpoint (format {FORMAT})")
    payload["uri"] = uri
    return payload


def load_model(ckpt: str, device: str | torch.device = "cpu") -> tuple[LLaMA, dict]:
    """The trained model (eval mode) and the checkpoint payload it came from."""
    payload = load(ckpt)
    model = LLaMA(ModelConfig.from_dict(payload["model_config"]))
    model.load_state_dict(payload["model"])
    return model.to(device).eval(), payload


def vocab_of(payload: dict) -> Vocab:
    return Vocab(**payload["vocab"])
