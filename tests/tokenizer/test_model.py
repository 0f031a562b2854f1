import json

import torch

from lvm_data.tokenizer.model import VQGAN, VQGANConfig

from .layouts import FIXTURE_MODEL


def meta_model(config: VQGANConfig) -> VQGAN:
    with torch.device("meta"):  # shapes only: the full model would allocate 585 MB
        return VQGAN(config)


def test_full_lvm_config_has_the_released_parameter_count():
    model = meta_model(VQGANConfig())
    assert sum(p.numel() for p in model.parameters()) == 146_244_675


def test_full_lvm_config_has_the_reference_key_names_in_order():
    # keys.txt is what open-muse's VQGANModel produces for the published LVM config (the fixture only differs in width)
    expected = (FIXTURE_MODEL / "keys.txt").read_text().split()
    assert list(meta_model(VQGANConfig()).state_dict()) == expected
    assert len(expected) == 277


def test_full_lvm_config_shapes_follow_the_design():
    shapes = {k: tuple(v.shape) for k, v in meta_model(VQGANConfig()).state_dict().items()}
    assert shapes["encoder.conv_in.weight"] == (128, 3, 3, 3)
    assert shapes["encoder.down.4.block.1.conv2.weight"] == (768, 768, 3, 3)
    assert shapes["encoder.down.1.block.0.nin_shortcut.weight"] == (256, 128, 1, 1)
    assert "encoder.down.4.downsample.conv.weight" not in shapes  # no downsample after the last level
    assert shapes["quant_conv.weight"] == (64, 64, 1, 1)
    assert shapes["quantize.embedding.weight"] == (8192, 64)
    assert shapes["post_quant_conv.weight"] == (64, 64, 1, 1)
    assert shapes["decoder.up.0.block.2.conv2.weight"] == (128, 128, 3, 3)  # up.0 is full resolution, 3 blocks
    assert shapes["decoder.conv_out.weight"] == (3, 128, 3, 3)
    assert not any(".attn" in k for k in shapes)  # LVM: no attention anywhere


def test_fixture_config_shapes_match_the_reference_manifest():
    manifest = json.loads((FIXTURE_MODEL / "manifest.json").read_text())
    config = VQGANConfig.from_dict(json.loads((FIXTURE_MODEL / "config.json").read_text()))
    shapes = {k: list(v.shape) for k, v in meta_model(config).state_dict().items()}
    assert shapes == manifest["shapes"]
    assert sum(p.numel() for p in meta_model(config).parameters()) == manifest["n_params"] == 9_822_627


def test_config_round_trips_through_dict_and_keeps_unknown_keys_apart():
    raw = {**VQGANConfig(hidden_channels=32).to_dict(), "_class_name": "VQGANModel", "future_option": 1}
    config = VQGANConfig.from_dict(raw)
    assert config == VQGANConfig(hidden_channels=32)
    assert config.extra == {"_class_name": "VQGANModel", "future_option": 1}
    assert config.tokens_per_image == 256 and config.latent_size == 16


def test_attention_blocks_appear_where_the_config_asks():
    config = VQGANConfig(
        resolution=32,
        hidden_channels=32,
        channel_mult=(1, 2),
        num_res_blocks=2,
        attn_resolutions=(16,),
        no_attn_mid_block=False,
        num_embeddings=16,
    )
    keys = set(meta_model(config).state_dict())
    assert "encoder.down.1.attn.1.q.weight" in keys and "encoder.down.0.attn.0.q.weight" not in keys
    assert "decoder.up.1.attn.2.proj_out.weight" in keys and "decoder.up.0.attn.0.q.weight" not in keys
    assert "encoder.mid.attn_1.k.weight" in keys and "decoder.mid.attn_1.v.weight" in keys
