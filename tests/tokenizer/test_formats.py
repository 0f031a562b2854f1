import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lvm_data.tokenizer import CheckpointError, load
from lvm_data.tokenizer.formats import detect_format, load_checkpoint

from .layouts import MICRO, TINY, fold_signed, margins, write_diffusers, write_muse, write_taming


@pytest.fixture(scope="module")
def layouts(tmp_path_factory, tiny_weights):
    """The same TINY network in every layout ([-1, 1] layouts with the scaling folded into the weights)."""
    root = tmp_path_factory.mktemp("layouts")
    with pytest.MonkeyPatch.context() as monkeypatch:
        return {
            "muse-safetensors": write_muse(root / "muse-st", TINY, tiny_weights),
            "muse-bin": write_muse(root / "muse-bin", TINY, tiny_weights, weights="bin"),
            "taming": write_taming(root / "taming", TINY, fold_signed(tiny_weights), monkeypatch),
            "taming-file": write_taming(root / "taming2", TINY, fold_signed(tiny_weights), monkeypatch)
            / "checkpoints"
            / "last.ckpt",
            "diffusers": write_diffusers(root / "diffusers", TINY, tiny_weights),
        }


def test_every_layout_gives_identical_codes(layouts, tiny_weights, tiny_images):
    assert margins(tiny_weights, TINY, tiny_images).min() > 1e-3  # no near-ties that rounding could flip
    codes = {name: load(str(path), device="cpu").encode(tiny_images) for name, path in layouts.items()}
    reference = codes.pop("muse-safetensors")
    assert len(np.unique(reference)) > 20  # informative codes, not one code everywhere
    for name, got in codes.items():
        np.testing.assert_array_equal(got, reference, err_msg=name)


def test_every_layout_decodes_alike(layouts, tiny_images):
    reference = load(str(layouts["muse-safetensors"]), device="cpu")
    codes = reference.encode(tiny_images[:1])
    expected = reference.decode(codes).astype(int)
    for name in ("taming", "diffusers"):
        got = load(str(layouts[name]), device="cpu").decode(codes).astype(int)
        assert np.abs(got - expected).max() <= 1, name


def test_formats_and_conventions_are_detected(layouts):
    expected = {
        "muse-safetensors": ("open-muse", (0.0, 1.0)),
        "muse-bin": ("open-muse", (0.0, 1.0)),
        "taming": ("taming", (-1.0, 1.0)),
        "taming-file": ("taming", (-1.0, 1.0)),
        "diffusers": ("diffusers", (0.0, 1.0)),
    }
    for name, (fmt, input_range) in expected.items():
        checkpoint = load_checkpoint(layouts[name])
        assert (checkpoint.format, checkpoint.input_range, checkpoint.config) == (fmt, input_range, TINY), name
    assert any("ignored 2 loss.*" in note for note in load_checkpoint(layouts["taming"]).notes)


def test_unknown_layouts_list_what_is_expected(tmp_path):
    (tmp_path / "readme.txt").write_text("no checkpoint here")
    with pytest.raises(CheckpointError, match="not a known checkpoint layout.*open-muse.*taming.*diffusers"):
        detect_format(tmp_path)
    with pytest.raises(CheckpointError, match="absent: no such checkpoint file or folder"):
        load(str(tmp_path / "absent"))


def test_wrong_keys_name_the_file_and_the_keys(tmp_path, micro_weights):
    state = dict(micro_weights)
    state["encoder.extra.weight"] = torch.ones(1)
    del state["decoder.conv_out.bias"]
    folder = write_muse(tmp_path / "ckpt", MICRO, state)
    with pytest.raises(
        CheckpointError,
        match=r"ckpt/model.safetensors: weights do not match the config: "
        r"1 missing keys \(first: decoder.conv_out.bias\); 1 unexpected keys \(first: encoder.extra",
    ):
        load(str(folder), device="cpu")


def test_wrong_shapes_name_the_key_and_both_shapes(tmp_path, micro_weights):
    folder = write_muse(tmp_path / "ckpt", MICRO, micro_weights)
    raw = json.loads((folder / "config.json").read_text())
    raw["num_embeddings"] = 32
    (folder / "config.json").write_text(json.dumps(raw))
    with pytest.raises(
        CheckpointError,
        match=r"config.json, .*model.safetensors: .*1 shape mismatches \(first: "
        r"quantize.embedding.weight: checkpoint \(16, 4\) vs config \(32, 4\)\)",
    ):
        load(str(folder), device="cpu")


def test_integer_weights_are_refused(tmp_path, micro_weights):
    state = dict(micro_weights)
    state["quant_conv.bias"] = torch.zeros(4, dtype=torch.int64)
    with pytest.raises(CheckpointError, match="quant_conv.bias holds torch.int64, not floating point"):
        load(str(write_muse(tmp_path / "ckpt", MICRO, state)), device="cpu")


def test_half_precision_weights_load_as_float32(tmp_path, micro_weights, micro_images):
    half = {k: v.to(torch.bfloat16) for k, v in micro_weights.items()}
    tok = load(str(write_muse(tmp_path / "ckpt", MICRO, half)), device="cpu")
    assert tok.model.quant_conv.weight.dtype == torch.float32
    assert tok.encode(micro_images).shape == (3, 64)


def test_muse_folder_problems(tmp_path, micro_weights):
    folder = write_muse(tmp_path / "ckpt", MICRO, micro_weights)
    save_file({k: v.contiguous() for k, v in micro_weights.items()}, str(folder / "other.safetensors"))
    with pytest.raises(CheckpointError, match=r"several .safetensors files \(model.safetensors, other.safetensors\)"):
        load(str(folder))
    (folder / "model.safetensors").unlink()
    (folder / "other.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights found; expected model.safetensors or pytorch_model.bin"):
        load(str(folder))
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json: unreadable JSON"):
        load(str(folder))
