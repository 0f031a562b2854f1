import json
import warnings

import numpy as np
import pytest
import torch

from lvm_data.tokenizer import CheckpointError, load
from lvm_data.tokenizer.diffusers_vq import our_key

from .layouts import TINY, diffusers_config, write_diffusers

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from diffusers import VQModel

# Attention in the lowest level and the mid block; 4 levels keep it small (16 x 16 tokens need 5 at 256 px,
# so these codes are 32 x 32 per image).
CONFIG = dict(
    block_out_channels=(32, 32, 64, 64),
    layers_per_block=1,
    latent_channels=8,
    num_vq_embeddings=64,
    vq_embed_dim=4,
    mid_block_add_attention=True,
    down_block_types=("DownEncoderBlock2D",) * 3 + ("AttnDownEncoderBlock2D",),
    up_block_types=("AttnUpDecoderBlock2D",) + ("UpDecoderBlock2D",) * 3,
)


def diffusers_model(lookup_from_codebook: bool) -> VQModel:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return VQModel(**CONFIG, lookup_from_codebook=lookup_from_codebook).eval()


@pytest.mark.parametrize("lookup_from_codebook, input_range", [(True, (0.0, 1.0)), (False, (-1.0, 1.0))])
def test_codes_and_decoding_match_diffusers_itself(tmp_path, tiny_images, lookup_from_codebook, input_range):
    model = diffusers_model(lookup_from_codebook)
    model.save_pretrained(tmp_path)  # diffusers' own writer: config.json + diffusion_pytorch_model.safetensors
    tok = load(str(tmp_path), device="cpu")
    assert (tok.format, tok.input_range, tok.tokens_per_image) == ("diffusers", input_range, 32 * 32)
    image = tiny_images[:1]
    codes = tok.encode(image)
    lo, hi = input_range
    with torch.no_grad():
        x = torch.from_numpy(image).permute(0, 3, 1, 2).float().contiguous() / 255 * (hi - lo) + lo
        latents = model.encode(x).latents  # (1, 4, 32, 32)
        expected = model.quantize(latents)[2][2].reshape(1, -1)  # the codes aMUSEd's pipelines use
        decoded = (
            model.decode(torch.from_numpy(codes.astype(np.int64)), force_not_quantize=True, shape=(1, 32, 32, 4)).sample
            if lookup_from_codebook
            else None
        )
    assert torch.allclose(tok.model.latents(x), latents, atol=1e-5)
    np.testing.assert_array_equal(codes, expected.numpy())
    if decoded is not None:
        with torch.no_grad():
            ours = tok.model.decode(torch.from_numpy(codes.astype(np.int64)))
        assert (ours - decoded).abs().max() < 1e-3


def test_the_layout_writer_produces_diffusers_own_keys_and_shapes(tmp_path, tiny_weights):
    from safetensors.torch import load_file

    folder = write_diffusers(tmp_path / "vqvae", TINY, tiny_weights)
    written = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    theirs = VQModel(**diffusers_config_kwargs()).state_dict()
    assert {k: tuple(v.shape) for k, v in written.items()} == {k: tuple(v.shape) for k, v in theirs.items()}


def diffusers_config_kwargs() -> dict:
    raw = diffusers_config(TINY)
    return {k: v for k, v in raw.items() if not k.startswith("_")}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"norm_type": "spatial"}, "norm_type 'spatial'"),
        ({"act_fn": "relu"}, "act_fn 'relu'"),
        ({"norm_num_groups": 16}, "norm_num_groups 16"),
        ({"block_out_channels": [32, 48, 32, 32, 32]}, "not multiples of the first"),
        (
            {"down_block_types": ["DownEncoderBlock2D"] * 5, "up_block_types": ["AttnUpDecoderBlock2D"] * 5},
            r"attention at encoder levels \[\] but decoder levels \[0, 1, 2, 3, 4\]",
        ),
        ({"up_block_types": ["UpDecoderBlock2D"] * 4 + ["SimpleCrossAttnUpBlock2D"]}, "block types"),
    ],
)
def test_variants_we_cannot_reproduce_are_refused(tmp_path, tiny_weights, change, message):
    folder = write_diffusers(tmp_path / "vqvae", TINY, tiny_weights)
    raw = {**json.loads((folder / "config.json").read_text()), **change}
    (folder / "config.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match=rf"vqvae/config.json: .*{message}"):
        load(str(folder), device="cpu")


def test_unknown_keys_and_weight_files(tmp_path, tiny_weights):
    from safetensors.torch import load_file, save_file

    folder = write_diffusers(tmp_path / "vqvae", TINY, tiny_weights)
    weights = folder / "diffusion_pytorch_model.safetensors"
    state = load_file(str(weights))
    state["encoder.down_blocks.0.resnets.0.time_emb_proj.weight"] = torch.ones(2, 2)
    save_file(state, str(weights))
    with pytest.raises(
        CheckpointError,
        match=r"diffusion_pytorch_model.safetensors: 1 keys are not part of a "
        r"diffusers VQModel \(first: encoder.down_blocks.0.resnets.0.time_emb_proj.weight\)",
    ):
        load(str(folder), device="cpu")
    del state["encoder.down_blocks.0.resnets.0.time_emb_proj.weight"]
    weights.unlink()
    save_file(state, str(folder / "diffusion_pytorch_model.fp16.safetensors"))  # a variant alone is used
    assert load(str(folder), device="cpu").format == "diffusers"
    (folder / "diffusion_pytorch_model.fp16.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no diffusion_pytorch_model.safetensors"):
        load(str(folder), device="cpu")


def test_pre_0_14_attention_names_are_accepted():
    assert our_key("encoder.mid_block.attentions.0.query.weight", 5) == "encoder.mid.attn_1.q.weight"
    assert our_key("decoder.mid_block.attentions.0.proj_attn.bias", 5) == "decoder.mid.attn_1.proj_out.bias"
    assert our_key("decoder.up_blocks.0.attentions.1.to_out.0.weight", 5) == "decoder.up.4.attn.1.proj_out.weight"
    assert our_key("decoder.up_blocks.4.upsamplers.0.conv.weight", 5) == "decoder.up.0.upsample.conv.weight"
    assert our_key("decoder.up_blocks.5.resnets.0.conv1.weight", 5) is None
