"""diffusers `VQModel` folders (the aMUSEd `vqvae` layout) mapped onto our VQGAN.

A folder holds config.json (`_class_name: VQModel`: block_out_channels, layers_per_block,
latent_channels, num_vq_embeddings, vq_embed_dim, ...) and diffusion_pytorch_model.safetensors (or
.bin). The network is the same taming-style VQGAN under other names: down_blocks/resnets ->
down/block, conv_shortcut -> nin_shortcut, mid_block.resnets.0/1 -> mid.block_1/2, attention
to_q/to_k/to_v/to_out.0 linear weights -> q/k/v/proj_out 1x1 convs, and decoder.up_blocks in
reverse order (diffusers stores the lowest resolution first, we store the full resolution first).

Input range. aMUSEd's vqvae is open-muse's VQGAN converted by diffusers' scripts/convert_amused.py,
which sets `lookup_from_codebook=True`; diffusers' AmusedPipeline, AmusedImg2ImgPipeline and
AmusedInpaintPipeline build `VaeImageProcessor(vae_scale_factor=..., do_normalize=False)` and pass
its [0, 1] output straight to `vqvae.encode`, so those weights expect [0, 1]. Other VQModel users
(e.g. LDMSuperResolutionPipeline, which feeds `2 * image - 1`) keep VaeImageProcessor's default
`do_normalize=True`, i.e. [-1, 1]. We read the range from the folder's own config: [0, 1] when
lookup_from_codebook is set (aMUSEd), [-1, 1] otherwise.

diffusers configs do not record the training image size (`sample_size` is not it); the tokenizer
uses 256 x 256, LVM's size, which fixes tokens_per_image at (256 / 2**(levels - 1))**2.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from lvm_data.tokenizer.checkpoint import SIGNED_RANGE, UNIT_RANGE, Checkpoint, one_file, read_json
from lvm_data.tokenizer.model import VQGANConfig
from lvm_data.tokenizer.weights import CheckpointError, read_state_dict

IMAGE_SIZE = 256
# VQModel.__init__ defaults, used for keys a config.json leaves out.
VQMODEL_DEFAULTS = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"],
    "up_block_types": ["UpDecoderBlock2D"],
    "block_out_channels": [64],
    "layers_per_block": 1,
    "act_fn": "silu",
    "latent_channels": 3,
    "num_vq_embeddings": 256,
    "norm_num_groups": 32,
    "vq_embed_dim": None,
    "norm_type": "group",
    "mid_block_add_attention": True,
    "lookup_from_codebook": False,
}
_DOWN_TYPES = {"DownEncoderBlock2D": False, "AttnDownEncoderBlock2D": True}  # type -> has attention
_UP_TYPES = {"UpDecoderBlock2D": False, "AttnUpDecoderBlock2D": True}


def is_diffusers_vq(path: Path) -> bool:
    path = Path(path)
    if not (path.is_dir() and (path / "config.json").is_file()):
        return False
    raw = read_json(path / "config.json")
    return raw.get("_class_name") == "VQModel" or {"block_out_channels", "num_vq_embeddings"} <= set(raw)


def load_diffusers_vq(folder: Path) -> Checkpoint:
    """Config and weights of a VQModel folder under our names; input range as the module docstring says."""
    folder = Path(folder)
    raw = {**VQMODEL_DEFAULTS, **read_json(folder / "config.json")}
    try:
        config = config_from_diffusers(folder / "config.json", raw)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(
            f"{folder / 'config.json'}: malformed VQModel config ({type(err).__name__}: {err})"
        ) from err
    weights = _weights_file(folder)
    state = rename_state_dict(weights, read_state_dict(weights), len(config.channel_mult))
    if raw["lookup_from_codebook"]:
        input_range = UNIT_RANGE
        why = "[0, 1]: aMUSEd vqvae (lookup_from_codebook); aMUSEd pipelines use VaeImageProcessor(do_normalize=False)"
    else:
        input_range = SIGNED_RANGE
        why = "[-1, 1]: diffusers' VaeImageProcessor default (do_normalize=True)"
    notes = [f"input range {why}", f"image size {IMAGE_SIZE} (diffusers configs do not record it)"]
    return Checkpoint("diffusers", config, state, input_range, [folder / "config.json", weights], notes)


def config_from_diffusers(path: Path, raw: dict) -> VQGANConfig:
    """Our VQGANConfig for a VQModel config (defaults filled in); refuses variants we cannot reproduce."""
    channels = [int(c) for c in raw["block_out_channels"]]
    down, up = list(raw["down_block_types"]), list(raw["up_block_types"])
    problems = _problems(raw, channels, down, up)
    if problems:
        raise CheckpointError(f"{path}: not a VQModel this loader can reproduce: {'; '.join(problems)}")
    levels = len(channels)
    encoder_attn = {i for i, kind in enumerate(down) if _DOWN_TYPES[kind]}
    decoder_attn = {levels - 1 - j for j, kind in enumerate(up) if _UP_TYPES[kind]}  # up_blocks are reversed
    if encoder_attn != decoder_attn:
        raise CheckpointError(
            f"{path}: attention at encoder levels {sorted(encoder_attn)} but decoder levels "
            f"{sorted(decoder_attn)}; our VQGAN places attention by resolution in both"
        )
    latent = int(raw["latent_channels"])
    return VQGANConfig(
        resolution=IMAGE_SIZE,
        num_channels=int(raw["in_channels"]),
        hidden_channels=channels[0],
        channel_mult=tuple(c // channels[0] for c in channels),
        num_res_blocks=int(raw["layers_per_block"]),
        attn_resolutions=tuple(IMAGE_SIZE // 2**i for i in sorted(encoder_attn)),
        no_attn_mid_block=not raw["mid_block_add_attention"],
        z_channels=latent,
        quantized_embed_dim=int(raw["vq_embed_dim"] or latent),
        num_embeddings=int(raw["num_vq_embeddings"]),
    )


def _problems(raw: dict, channels: list[int], down: list[str], up: list[str]) -> list[str]:
    problems = [] if channels else ["block_out_channels is empty"]
    if raw["act_fn"] != "silu":
        problems.append(f"act_fn {raw['act_fn']!r} (only 'silu')")
    if raw["norm_type"] != "group":
        problems.append(f"norm_type {raw['norm_type']!r} (only 'group'; 'spatial' is MoVQ)")
    if int(raw["norm_num_groups"]) != 32:
        problems.append(f"norm_num_groups {raw['norm_num_groups']} (only 32)")
    if raw["in_channels"] != raw["out_channels"]:
        problems.append("in_channels differs from out_channels")
    if channels and any(c % channels[0] for c in channels):
        problems.append(f"block_out_channels {channels} are not multiples of the first")
    if len(down) != len(channels) or len(up) != len(channels):
        problems.append("down/up_block_types and block_out_channels differ in length")
    unknown = sorted({t for t in down if t not in _DOWN_TYPES} | {t for t in up if t not in _UP_TYPES})
    if unknown:
        problems.append(f"block types {unknown}")
    return problems


def _weights_file(folder: Path) -> Path:
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    variant = one_file(folder, "diffusion_pytorch_model.*.safetensors", "variant .safetensors")
    if variant is None or variant.name.endswith(".index.json"):
        raise CheckpointError(
            f"{folder}: no diffusion_pytorch_model.safetensors (or .bin) beside config.json; "
            "sharded VQModel weights are not supported"
        )
    return variant


def rename_state_dict(path: Path, state: dict[str, torch.Tensor], levels: int) -> dict[str, torch.Tensor]:
    """diffusers VQModel keys -> our keys; attention linear weights become 1x1 conv weights."""
    out, unknown = {}, []
    for key, tensor in state.items():
        ours = our_key(key, levels)
        if ours is None:
            unknown.append(key)
            continue
        if re.search(r"\.attn(?:\.\d+|_1)\.(?:q|k|v|proj_out)\.weight$", ours) and tensor.ndim == 2:
            tensor = tensor[:, :, None, None]  # Linear (C, C) -> Conv2d 1x1 (C, C, 1, 1)
        out[ours] = tensor
    if unknown:
        raise CheckpointError(
            f"{path}: {len(unknown)} keys are not part of a diffusers VQModel "
            f"(first: {', '.join(unknown[:3])}); check that config.json belongs to these weights"
        )
    return out


_RESNET = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2", "conv_shortcut": "nin_shortcut"}
_ATTN = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
    "query": "q",
    "key": "k",
    "value": "v",
    "proj_attn": "proj_out",
}  # second half: pre-0.14 diffusers names
_PARAM = r"(weight|bias)"


def our_key(key: str, levels: int) -> str | None:
    """Our parameter name for one diffusers key, or None when the key has no counterpart."""
    if re.fullmatch(rf"(encoder|decoder)\.(conv_in|conv_out)\.{_PARAM}", key):
        return key
    if re.fullmatch(rf"(quant_conv|post_quant_conv)\.{_PARAM}|quantize\.embedding\.weight", key):
        return key
    if m := re.fullmatch(rf"(encoder|decoder)\.conv_norm_out\.{_PARAM}", key):
        return f"{m[1]}.norm_out.{m[2]}"
    if m := re.fullmatch(rf"(encoder|decoder)\.mid_block\.resnets\.([01])\.(\w+)\.{_PARAM}", key):
        return _part(f"{m[1]}.mid.block_{int(m[2]) + 1}", _RESNET, m[3], m[4])
    if m := re.fullmatch(rf"(encoder|decoder)\.mid_block\.attentions\.0\.([\w.]+?)\.{_PARAM}", key):
        return _part(f"{m[1]}.mid.attn_1", _ATTN, m[2], m[3])
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.(.+)", key):
        return _level_key(f"encoder.down.{m[1]}", "downsamplers", "downsample", m[2])
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.(.+)", key):
        level = levels - 1 - int(m[1])
        return _level_key(f"decoder.up.{level}", "upsamplers", "upsample", m[2]) if level >= 0 else None
    return None


def _level_key(prefix: str, theirs: str, ours: str, rest: str) -> str | None:
    if m := re.fullmatch(rf"resnets\.(\d+)\.(\w+)\.{_PARAM}", rest):
        return _part(f"{prefix}.block.{m[1]}", _RESNET, m[2], m[3])
    if m := re.fullmatch(rf"attentions\.(\d+)\.([\w.]+?)\.{_PARAM}", rest):
        return _part(f"{prefix}.attn.{m[1]}", _ATTN, m[2], m[3])
    if m := re.fullmatch(rf"{theirs}\.0\.conv\.{_PARAM}", rest):
        return f"{prefix}.{ours}.conv.{m[1]}"
    return None


def _part(prefix: str, names: dict[str, str], theirs: str, param: str) -> str | None:
    return f"{prefix}.{names[theirs]}.{param}" if theirs in names else None
