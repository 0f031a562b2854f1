import pytest
import yaml

from lvm_data.tokenizer import CheckpointError, load
from lvm_data.tokenizer.taming import config_from_yaml, find_files, is_taming

from .layouts import MICRO, taming_yaml, write_lightning_ckpt, write_taming


def write_yaml(path, raw):
    path.write_text(yaml.safe_dump(raw))
    return path


def test_config_maps_ddconfig_n_embed_and_embed_dim(tmp_path):
    config = config_from_yaml(write_yaml(tmp_path / "config.yaml", taming_yaml(MICRO)))
    expected = MICRO.to_dict() | {"no_attn_mid_block": False}  # taming always has mid-block attention
    assert config.to_dict() == expected


def test_the_released_imagenet_f16_1024_config():
    raw = {
        "model": {
            "target": "taming.models.vqgan.VQModel",
            "params": {
                "embed_dim": 256,
                "n_embed": 1024,
                "ddconfig": {
                    "double_z": False,
                    "z_channels": 256,
                    "resolution": 256,
                    "in_channels": 3,
                    "out_ch": 3,
                    "ch": 128,
                    "ch_mult": [1, 1, 2, 2, 4],
                    "num_res_blocks": 2,
                    "attn_resolutions": [16],
                    "dropout": 0.0,
                },
            },
        }
    }
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        config = config_from_yaml(write_yaml(Path(folder) / "model.yaml", raw))
    assert (config.hidden_channels, config.channel_mult, config.attn_resolutions) == (128, (1, 1, 2, 2, 4), (16,))
    assert (config.num_embeddings, config.quantized_embed_dim, config.z_channels) == (1024, 256, 256)
    assert config.tokens_per_image == 256


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda m: m.__setitem__("target", "taming.models.vqgan.GumbelVQ"),
            "model.target taming.models.vqgan.GumbelVQ",
        ),
        (lambda m: m["params"]["ddconfig"].__setitem__("double_z", True), "ddconfig.double_z is true"),
        (lambda m: m["params"]["ddconfig"].__setitem__("out_ch", 1), "in_channels differs from out_ch"),
        (
            lambda m: m["params"]["ddconfig"].__setitem__("use_linear_attn", True),
            r"unknown ddconfig keys \['use_linear",
        ),
        (lambda m: m["params"].__setitem__("remap", "used.npy"), "params.remap is set"),
        (lambda m: m["params"].pop("n_embed"), "model.params is missing 'n_embed'"),
    ],
)
def test_configs_this_loader_cannot_reproduce_are_refused(tmp_path, change, message):
    raw = taming_yaml(MICRO)
    change(raw["model"])
    with pytest.raises(CheckpointError, match=rf"config.yaml: .*{message}"):
        config_from_yaml(write_yaml(tmp_path / "config.yaml", raw))


def test_layouts_find_the_checkpoint_and_its_config(tmp_path, micro_weights, monkeypatch):
    run = write_taming(tmp_path / "run", MICRO, micro_weights, monkeypatch)
    assert find_files(run) == (run / "checkpoints" / "last.ckpt", run / "configs" / "2021-01-01T00-00-00-project.yaml")
    assert find_files(run / "checkpoints" / "last.ckpt")[1].name.endswith("-project.yaml")
    flat = tmp_path / "flat"
    flat.mkdir()
    write_lightning_ckpt(flat / "model.ckpt", micro_weights, monkeypatch)
    write_yaml(flat / "config.yaml", taming_yaml(MICRO))
    assert find_files(flat) == (flat / "model.ckpt", flat / "config.yaml")
    assert is_taming(flat) and is_taming(flat / "model.ckpt") and not is_taming(tmp_path / "nothing")


def test_missing_or_ambiguous_files_are_explained(tmp_path, micro_weights, monkeypatch):
    flat = tmp_path / "flat"
    flat.mkdir()
    write_lightning_ckpt(flat / "model.ckpt", micro_weights, monkeypatch)
    with pytest.raises(CheckpointError, match=r"model.ckpt: need exactly one taming config.yaml .*found: none"):
        load(str(flat))
    write_yaml(flat / "a.yaml", taming_yaml(MICRO))
    write_yaml(flat / "b.yaml", taming_yaml(MICRO))
    with pytest.raises(CheckpointError, match=r"found: a.yaml, b.yaml"):
        load(str(flat))
    write_lightning_ckpt(flat / "other.ckpt", micro_weights, monkeypatch)
    with pytest.raises(CheckpointError, match=r"flat: expected exactly one .ckpt file \(found: model.ckpt, other.ckpt"):
        load(str(flat))


def test_taming_weights_that_do_not_fit_the_config_are_refused(tmp_path, micro_weights, monkeypatch):
    run = write_taming(tmp_path / "run", MICRO, micro_weights, monkeypatch)
    raw = taming_yaml(MICRO)
    raw["model"]["params"]["ddconfig"]["attn_resolutions"] = []  # but mid-block attention is still expected
    write_yaml(run / "configs" / "2021-01-01T00-00-00-project.yaml", raw)
    with pytest.raises(
        CheckpointError,
        match=r"last.ckpt, .*project.yaml: weights do not match the config: "
        r"\d+ missing keys \(first: decoder.mid.attn_1",
    ):
        load(str(run), device="cpu")
