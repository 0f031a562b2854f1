import json

import pytest
import torch
from safetensors.torch import load_file

from lvm_data.train import checkpoint
from lvm_data.train.config import TrainConfig
from lvm_data.train.export import export
from lvm_data.train.loop import train

from .synth import random_corpus

transformers = pytest.importorskip("transformers")  # a dev dependency (setup.cfg [dev])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    random_corpus(root / "data", files=1, per_file=10, codebook=64, tpi=8)
    train(
        TrainConfig(
            data=str(root / "data"), out=str(root / "run"), steps=3, batch_size=2, context=64, lr=1e-2, val_fraction=0.0
        )
    )
    return root


def test_export_writes_the_llama_layout_with_our_vocabulary(run):
    result = export(str(run / "run"), str(run / "hf"))
    config = json.loads((run / "hf" / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["model_type"] == "llama"
    assert config["vocab_size"] == 164 and config["tie_word_embeddings"] is False
    assert (config["bos_token_id"], config["eos_token_id"], config["pad_token_id"]) == (64, 65, 66)
    assert config["rope_theta"] == 10000.0 and config["rms_norm_eps"] == 1e-6
    tensors = load_file(str(run / "hf" / "model.safetensors"))
    assert "model.layers.3.self_attn.q_proj.weight" in tensors and "lm_head.weight" in tensors
    assert sum(t.numel() for t in tensors.values()) == result.parameters


def test_transformers_loads_the_export_and_gives_our_logits(run):
    export(str(run / "run"), str(run / "hf32"))
    ours, _ = checkpoint.load_model(str(run / "run"))
    theirs = transformers.LlamaForCausalLM.from_pretrained(str(run / "hf32"), dtype=torch.float32).eval()
    assert theirs.config.vocab_size == 164 and theirs.config.eos_token_id == 65
    assert set(theirs.state_dict()) == set(load_file(str(run / "hf32" / "model.safetensors")))  # nothing left out
    tokens = torch.randint(0, 164, (2, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ours(tokens)
        got = theirs(input_ids=tokens).logits
    assert expected.abs().max() > 0.1  # trained weights, not zeros
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_bfloat16_export_halves_the_weights(run):
    export(str(run / "run"), str(run / "hf16"), dtype="bfloat16")
    tensors = load_file(str(run / "hf16" / "model.safetensors"))
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}
    with pytest.raises(ValueError, match="float32"):
        export(str(run / "run"), str(run / "x"), dtype="int8")


def test_a_tied_model_with_its_own_rope_theta_exports_one_matrix_and_transformers_computes_it(tmp_path):
    random_corpus(tmp_path / "data", files=1, per_file=10, codebook=64, tpi=8)
    train(
        TrainConfig(
            data=str(tmp_path / "data"),
            out=str(tmp_path / "run"),
            steps=2,
            batch_size=2,
            context=64,
            lr=1e-2,
            val_fraction=0.0,
            tie_embeddings=True,
            rope_theta=500.0,
        )
    )
    export(str(tmp_path / "run"), str(tmp_path / "hf"))
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["tie_word_embeddings"] is True and config["rope_theta"] == 500.0
    assert "lm_head.weight" not in load_file(str(tmp_path / "hf" / "model.safetensors"))
    ours, _ = checkpoint.load_model(str(tmp_path / "run"))
    theirs = transformers.LlamaForCausalLM.from_pretrained(str(tmp_path / "hf"), dtype=torch.float32).eval()
    tokens = torch.randint(0, 164, (1, 30), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(theirs(input_ids=tokens).logits, ours(tokens), atol=1e-4, rtol=1e-4)
