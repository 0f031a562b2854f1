"""taming-transformers VQGAN checkpoints: a Lightning `.ckpt` + the config.yaml it was trained with.

Accepted layouts: a `.ckpt` file whose config lies beside it (or in ../configs, as in taming's
logs/<run>/checkpoints/last.ckpt + logs/<run>/configs/*-project.yaml), or a folder holding one `.ckpt`
(directly or in checkpoints/) and its config (directly or in configs/). The config is the YAML whose
model.params holds a ddconfig; taming's *-lightning.yaml files have none and are skipped.

Input range [-1, 1]: taming's data loaders feed `x / 127.5 - 1`. The network is the one our model
builds (taming's Encoder/Decoder, attention in the mid block always); `loss.*` tensors
(discriminator, LPIPS) only serve training and are never read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lvm_data.tokenizer.checkpoint import SIGNED_RANGE, Checkpoint
from lvm_data.tokenizer.lightning import read_lightning_state_dict
from lvm_data.tokenizer.model import VQGANConfig
from lvm_data.tokenizer.weights import CheckpointError

SUPPORTED_TARGETS = ("taming.models.vqgan.VQModel",)
IGNORED_PREFIX = "loss."
_DDCONFIG_KEYS = {
    "double_z",
    "z_channels",
    "resolution",
    "in_channels",
    "out_ch",
    "ch",
    "ch_mult",
    "num_res_blocks",
    "attn_resolutions",
    "dropout",
    "resamp_with_conv",
    "give_pre_end",
    "tanh_out",
}


def is_taming(path: Path) -> bool:
    path = Path(path)
    if path.is_file():
        return path.suffix == ".ckpt"
    return path.is_dir() and bool(_ckpt_candidates(path))


def load_taming(path: Path) -> Checkpoint:
    """Config from the YAML, weights from the .ckpt (safe reader), `loss.*` dropped. Input [-1, 1]."""
    ckpt, config_file = find_files(Path(path))
    config = config_from_yaml(config_file)
    ignored = []

    def keep(name: str) -> bool:
        if name.startswith(IGNORED_PREFIX):
            ignored.append(name)
            return False
        return True

    state = read_lightning_state_dict(ckpt, keep)
    notes = [f"ignored {len(ignored)} {IGNORED_PREFIX}* tensors (training-only discriminator/perceptual loss)"]
    return Checkpoint("taming", config, state, SIGNED_RANGE, [ckpt, config_file], notes if ignored else [])


def _ckpt_candidates(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ckpt")) + sorted(folder.glob("checkpoints/*.ckpt"))


def find_files(path: Path) -> tuple[Path, Path]:
    """(checkpoint, config) for a .ckpt file or a folder holding one."""
    if path.is_file():
        ckpt = path
        root = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    else:
        found = _ckpt_candidates(path)
        if len(found) != 1:
            listed = ", ".join(str(p.relative_to(path)) for p in found) or "none"
            raise CheckpointError(
                f"{path}: expected exactly one .ckpt file (found: {listed}); point at the one you mean"
            )
        ckpt, root = found[0], path
    folders = [ckpt.parent, root, root / "configs"]
    yamls = sorted({p for folder in folders for pattern in ("*.yaml", "*.yml") for p in folder.glob(pattern)})
    configs = [p for p in yamls if _has_ddconfig(_read_yaml(p))]
    if len(configs) != 1:
        listed = ", ".join(p.name for p in configs) or "none"
        raise CheckpointError(
            f"{ckpt}: need exactly one taming config.yaml with model.params.ddconfig beside the checkpoint or in "
            f"configs/ (found: {listed}); copy the training run's config next to the .ckpt"
        )
    return ckpt, configs[0]


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise CheckpointError(f"{path}: unreadable YAML ({err})") from err


def _has_ddconfig(raw: object) -> bool:
    params = (
        raw.get("model", {}).get("params") if isinstance(raw, dict) and isinstance(raw.get("model"), dict) else None
    )
    return isinstance(params, dict) and isinstance(params.get("ddconfig"), dict)


def config_from_yaml(path: Path) -> VQGANConfig:
    """Our VQGANConfig from taming's model.params (ddconfig, n_embed, embed_dim)."""
    model = _read_yaml(path)["model"]
    params, dd = model["params"], model["params"]["ddconfig"]
    target = model.get("target")
    if target is not None and target not in SUPPORTED_TARGETS:
        raise CheckpointError(
            f"{path}: model.target {target} is not supported; only {SUPPORTED_TARGETS[0]} "
            "(Gumbel, EMA and segmentation variants quantize differently)"
        )
    problems = [f"unknown ddconfig keys {sorted(set(dd) - _DDCONFIG_KEYS)}"] if set(dd) - _DDCONFIG_KEYS else []
    problems += [f"ddconfig.{k} is true" for k in ("double_z", "give_pre_end", "tanh_out") if dd.get(k)]
    problems += ["ddconfig.in_channels differs from out_ch"] if dd.get("in_channels", 3) != dd.get("out_ch", 3) else []
    problems += ["params.remap is set (indices are remapped)"] if params.get("remap") else []
    if problems:
        raise CheckpointError(f"{path}: not a VQGAN this loader can reproduce: {'; '.join(problems)}")
    try:
        return VQGANConfig(
            resolution=int(dd["resolution"]),
            num_channels=int(dd.get("in_channels", 3)),
            hidden_channels=int(dd["ch"]),
            channel_mult=tuple(int(m) for m in dd["ch_mult"]),
            num_res_blocks=int(dd["num_res_blocks"]),
            attn_resolutions=tuple(int(r) for r in dd.get("attn_resolutions", ())),
            no_attn_mid_block=False,
            z_channels=int(dd["z_channels"]),
            quantized_embed_dim=int(params["embed_dim"]),
            num_embeddings=int(params["n_embed"]),
            dropout=float(dd.get("dropout", 0.0)),
            resample_with_conv=bool(dd.get("resamp_with_conv", True)),
        )
    except KeyError as err:
        raise CheckpointError(
            f"{path}: model.params is missing {err.args[0]!r} (need ddconfig.ch, ch_mult, "
            "num_res_blocks, resolution, z_channels, n_embed, embed_dim)"
        ) from err
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: a model.params value has the wrong type ({err})") from err
