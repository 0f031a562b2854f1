"""Small VQGANs and the same weights written in every checkpoint layout the loaders read."""

from __future__ import annotations

import collections
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import save_file

from lvm_data.tokenizer.diffusers_vq import our_key
from lvm_data.tokenizer.model import VQGAN, VQGANConfig

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures" / "vqgan"
FIXTURE_MODEL = FIXTURES / "muse-lvm-small"

# 256 x 256 like LVM (diffusers folders do not record another size), 5 levels -> 16 x 16 tokens, attention in
# the lowest level and the mid block so every renamed module kind is exercised; narrow and 64 codes to stay fast.
TINY = VQGANConfig(
    resolution=256,
    hidden_channels=32,
    channel_mult=(1, 1, 1, 1, 1),
    num_res_blocks=1,
    attn_resolutions=(16,),
    no_attn_mid_block=False,
    z_channels=8,
    quantized_embed_dim=8,
    num_embeddings=64,
)
# For tests where only the files matter: 16 x 16 input, 8 x 8 tokens.
MICRO = VQGANConfig(
    resolution=16,
    hidden_channels=32,
    channel_mult=(1, 2),
    num_res_blocks=1,
    z_channels=4,
    quantized_embed_dim=4,
    num_embeddings=16,
)


def fixture_images(count: int = 7) -> np.ndarray:
    return np.load(FIXTURES / "images.npz")["images"][:count]


def random_state(config: VQGANConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VQGAN(config).state_dict()


def tiny_state(images: np.ndarray, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random TINY weights made informative the way the reference fixture was: quant_conv rescaled so the
    latents of `images` are standardised per channel, and codebook rows picked among those latents by
    farthest-point sampling, so every position of `images` has a clear nearest code.

    encoder.conv_in keeps only the centre tap of each 3x3 kernel: then folding the [-1, 1] input
    scaling into it (fold_signed) gives exactly the same function, zero padding included.
    """
    state = random_state(TINY, seed)
    keep = torch.zeros(3, 3)
    keep[1, 1] = 1.0
    state["encoder.conv_in.weight"] = state["encoder.conv_in.weight"] * keep
    z = _latents(state, images)  # (positions, D)
    mean, std = z.mean(0), z.std(0)
    state["quant_conv.weight"] = state["quant_conv.weight"] / std[:, None, None, None]
    state["quant_conv.bias"] = (state["quant_conv.bias"] - mean) / std
    z = (z - mean) / std
    rows, nearest = [0], ((z - z[0]) ** 2).sum(1)
    for _ in range(TINY.num_embeddings - 1):
        rows.append(int(nearest.argmax()))
        nearest = torch.minimum(nearest, ((z - z[rows[-1]]) ** 2).sum(1))
    state["quantize.embedding.weight"] = z[rows].clone()
    return state


def _latents(state: dict[str, torch.Tensor], images: np.ndarray) -> torch.Tensor:
    model = VQGAN(TINY).eval()
    model.load_state_dict(state)
    with torch.no_grad():
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
        return model.latents(x).permute(0, 2, 3, 1).reshape(-1, TINY.quantized_embed_dim)


def margins(state: dict[str, torch.Tensor], config: VQGANConfig, images: np.ndarray) -> np.ndarray:
    """Second-nearest minus nearest squared distance per position, in float64."""
    model = VQGAN(config).eval()
    model.load_state_dict(state)
    with torch.no_grad():
        x = torch.from_numpy(images).permute(0, 3, 1, 2).double() / 255.0
        z = model.double().latents(x).permute(0, 2, 3, 1).reshape(-1, config.quantized_embed_dim)
    dist = torch.cdist(z, state["quantize.embedding.weight"].double()) ** 2
    two = dist.topk(2, largest=False).values
    return (two[:, 1] - two[:, 0]).numpy()


def write_muse(folder: Path, config: VQGANConfig, state: dict[str, torch.Tensor], weights: str = "safetensors") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    raw = {"_class_name": "VQGANModel", "_version": "0.0.1", **config.to_dict()}
    (folder / "config.json").write_text(json.dumps(raw, indent=2, sort_keys=True))
    if weights == "safetensors":
        save_file(
            {k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"), metadata={"format": "pt"}
        )
    else:
        torch.save(collections.OrderedDict(state), folder / "pytorch_model.bin")
    return folder


def fold_signed(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights taking and giving [-1, 1] pixels that compute what `state` computes on [0, 1] pixels.

    Input: x01 = (x + 1) / 2, so conv_in W, b -> W / 2, b + sum(W) / 2 (exact when W has only centre taps).
    Output: y = 2 * y01 - 1, so conv_out W, b -> 2 W, 2 b - 1.
    """
    out = dict(state)
    w, b = state["encoder.conv_in.weight"], state["encoder.conv_in.bias"]
    out["encoder.conv_in.weight"], out["encoder.conv_in.bias"] = w / 2, b + w.sum(dim=(1, 2, 3)) / 2
    w, b = state["decoder.conv_out.weight"], state["decoder.conv_out.bias"]
    out["decoder.conv_out.weight"], out["decoder.conv_out.bias"] = 2 * w, 2 * b - 1
    return out


def taming_yaml(config: VQGANConfig) -> dict:
    """A config.yaml as taming-transformers writes it (configs/*-project.yaml)."""
    ddconfig = {
        "double_z": False,
        "z_channels": config.z_channels,
        "resolution": config.resolution,
        "in_channels": config.num_channels,
        "out_ch": config.num_channels,
        "ch": config.hidden_channels,
        "ch_mult": list(config.channel_mult),
        "num_res_blocks": config.num_res_blocks,
        "attn_resolutions": list(config.attn_resolutions),
        "dropout": 0.0,
    }
    loss = {
        "target": "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator",
        "params": {
            "disc_conditional": False,
            "disc_in_channels": 3,
            "disc_start": 10000,
            "disc_weight": 0.8,
            "codebook_weight": 1.0,
        },
    }
    return {
        "model": {
            "base_learning_rate": 4.5e-6,
            "target": "taming.models.vqgan.VQModel",
            "params": {
                "embed_dim": config.quantized_embed_dim,
                "n_embed": config.num_embeddings,
                "ddconfig": ddconfig,
                "lossconfig": loss,
            },
        }
    }


def lightning_classes() -> tuple[dict[str, types.ModuleType], type, type]:
    """Stand-ins for pytorch_lightning's ModelCheckpoint and AttributeDict, as modules to put in sys.modules
    while torch.save pickles them by name (pytorch_lightning itself is not installed)."""
    callbacks = types.ModuleType("pytorch_lightning.callbacks.model_checkpoint")
    parsing = types.ModuleType("pytorch_lightning.utilities.parsing")
    model_checkpoint = type("ModelCheckpoint", (), {"__module__": callbacks.__name__})
    attribute_dict = type("AttributeDict", (dict,), {"__module__": parsing.__name__})
    callbacks.ModelCheckpoint, parsing.AttributeDict = model_checkpoint, attribute_dict
    modules = {
        name: types.ModuleType(name)
        for name in ("pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.utilities")
    }
    modules[callbacks.__name__], modules[parsing.__name__] = callbacks, parsing
    return modules, model_checkpoint, attribute_dict


def write_lightning_ckpt(path: Path, state: dict[str, torch.Tensor], monkeypatch, extra: dict | None = None) -> Path:
    """A Lightning-1.x-style checkpoint: weights + loss.* tensors, optimizer states, callback state keyed by
    the ModelCheckpoint class, AttributeDict hyper-parameters, numpy scalars, sets and bytes."""
    modules, model_checkpoint, attribute_dict = lightning_classes()
    weights = collections.OrderedDict(state)
    weights["loss.discriminator.main.0.weight"] = torch.randn(4, 3, 4, 4)
    weights["loss.discriminator.main.1.num_batches_tracked"] = torch.tensor(7)
    first = next(iter(state.values()))
    ckpt = {
        "epoch": 3,
        "global_step": 1200,
        "pytorch-lightning_version": "1.0.8",
        "state_dict": weights,
        "callbacks": {model_checkpoint: {"best_model_score": torch.tensor(0.25), "best_model_path": "last.ckpt"}},
        "optimizer_states": [
            {
                "state": {0: {"exp_avg": torch.zeros_like(first), "step": 1200}},
                "param_groups": [{"lr": 4.5e-6, "betas": (0.5, 0.9), "params": [0]}],
            }
        ],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": attribute_dict(embed_dim=8, lr=np.float64(4.5e-6), tags={"vq", "lvm"}, blob=b"\x00\x01"),
        **(extra or {}),
    }
    with monkeypatch.context() as patch:
        for name, module in modules.items():
            patch.setitem(sys.modules, name, module)
        torch.save(ckpt, path)
    return path


def write_taming(folder: Path, config: VQGANConfig, state: dict[str, torch.Tensor], monkeypatch) -> Path:
    """taming's logs/<run>/ layout: checkpoints/last.ckpt + configs/<time>-project.yaml (+ -lightning.yaml)."""
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    (folder / "configs").mkdir(exist_ok=True)
    (folder / "configs" / "2021-01-01T00-00-00-project.yaml").write_text(yaml.safe_dump(taming_yaml(config)))
    lightning = {"lightning": {"trainer": {"gpus": "0,", "max_epochs": 10}}}
    (folder / "configs" / "2021-01-01T00-00-00-lightning.yaml").write_text(yaml.safe_dump(lightning))
    write_lightning_ckpt(folder / "checkpoints" / "last.ckpt", state, monkeypatch)
    return folder


def diffusers_config(config: VQGANConfig, lookup_from_codebook: bool = True) -> dict:
    levels = len(config.channel_mult)
    attn = {i for i in range(levels) if config.resolution // 2**i in config.attn_resolutions}
    return {
        "_class_name": "VQModel",
        "_diffusers_version": "0.42.1",
        "act_fn": "silu",
        "block_out_channels": [config.hidden_channels * m for m in config.channel_mult],
        "down_block_types": [("AttnDownEncoderBlock2D" if i in attn else "DownEncoderBlock2D") for i in range(levels)],
        "up_block_types": [
            ("AttnUpDecoderBlock2D" if levels - 1 - j in attn else "UpDecoderBlock2D") for j in range(levels)
        ],
        "force_upcast": False,
        "in_channels": config.num_channels,
        "latent_channels": config.z_channels,
        "layers_per_block": config.num_res_blocks,
        "lookup_from_codebook": lookup_from_codebook,
        "mid_block_add_attention": not config.no_attn_mid_block,
        "norm_num_groups": 32,
        "norm_type": "group",
        "num_vq_embeddings": config.num_embeddings,
        "out_channels": config.num_channels,
        "sample_size": 32,
        "scaling_factor": 0.18215,
        "vq_embed_dim": config.quantized_embed_dim,
    }


def diffusers_keys(config: VQGANConfig) -> dict[str, str]:
    """Every diffusers VQModel key for `config` -> our key (from the loader's own mapping, inverted by search)."""
    levels = len(config.channel_mult)
    ours = set(VQGAN(config).state_dict())
    candidates = _diffusers_candidates(levels, config.num_res_blocks + 1)
    mapping = {theirs: our_key(theirs, levels) for theirs in candidates}
    mapping = {theirs: key for theirs, key in mapping.items() if key in ours}
    assert set(mapping.values()) == ours, sorted(ours - set(mapping.values()))[:5]
    return mapping


def _diffusers_candidates(levels: int, blocks: int) -> list[str]:
    resnet = ["norm1", "conv1", "norm2", "conv2", "conv_shortcut"]
    attn = ["group_norm", "to_q", "to_k", "to_v", "to_out.0"]
    names = [
        "encoder.conv_in",
        "encoder.conv_out",
        "encoder.conv_norm_out",
        "decoder.conv_in",
        "decoder.conv_out",
        "decoder.conv_norm_out",
        "quant_conv",
        "post_quant_conv",
    ]
    for side in ("encoder", "decoder"):
        names += [f"{side}.mid_block.resnets.{i}.{p}" for i in range(2) for p in resnet]
        names += [f"{side}.mid_block.attentions.0.{p}" for p in attn]
    for i in range(levels):
        for j in range(blocks):
            names += [f"encoder.down_blocks.{i}.resnets.{j}.{p}" for p in resnet]
            names += [f"encoder.down_blocks.{i}.attentions.{j}.{p}" for p in attn]
            names += [f"decoder.up_blocks.{i}.resnets.{j}.{p}" for p in resnet]
            names += [f"decoder.up_blocks.{i}.attentions.{j}.{p}" for p in attn]
        names += [f"encoder.down_blocks.{i}.downsamplers.0.conv", f"decoder.up_blocks.{i}.upsamplers.0.conv"]
    return [f"{n}.{p}" for n in names for p in ("weight", "bias")] + ["quantize.embedding.weight"]


def write_diffusers(
    folder: Path, config: VQGANConfig, state: dict[str, torch.Tensor], lookup_from_codebook: bool = True
) -> Path:
    """A diffusers VQModel folder holding `state`: renamed keys, attention 1x1 convs as Linear weights."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(diffusers_config(config, lookup_from_codebook), indent=2))
    theirs = {}
    for their_key, key in diffusers_keys(config).items():
        tensor = state[key]
        if ".attentions." in their_key and their_key.endswith(".weight") and "group_norm" not in their_key:
            tensor = tensor[:, :, 0, 0]  # Conv2d 1x1 (C, C, 1, 1) -> Linear (C, C)
        theirs[their_key] = tensor.contiguous()
    save_file(theirs, str(folder / "diffusion_pytorch_model.safetensors"))
    return folder
