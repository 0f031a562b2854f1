import pytest
import torch

from lvm_data.tokenizer import cpu as cpu_probe
from lvm_data.train.config import (
    MODEL_SHAPES,
    N_SPECIAL,
    TrainConfig,
    Vocab,
    model_config,
    parameter_count,
    slow_bf16_warning,
)
from lvm_data.train.model import LLaMA


def test_lvm_shapes_are_easylm_configs():
    # LVM's EasyLM LLAMA_STANDARD_CONFIGS: (hidden, intermediate, layers, heads), context 4096
    lvm = {
        "vqlm_100m": (640, 1664, 22, 10),
        "vqlm_300m": (1024, 2688, 22, 8),
        "vqlm_600m": (1536, 4096, 22, 16),
        "vqlm_1b": (2048, 5504, 22, 16),
        "vqlm_3b": (3200, 8640, 26, 32),
        "vqlm_7b": (4096, 11008, 32, 32),
    }
    for name, shape in lvm.items():
        assert MODEL_SHAPES[name] == (*shape, 4096)
    assert Vocab(8192).size == 8292  # LVM's vocab_size


@pytest.mark.parametrize("name", sorted(MODEL_SHAPES))
def test_parameter_count_matches_the_model_on_meta_device(name):
    cfg = model_config(name, Vocab(8192))
    with torch.device("meta"):
        model = LLaMA(cfg)
    assert model.num_parameters() == parameter_count(cfg)
    names = dict(model.named_parameters())
    assert names["lm_head.weight"].shape == (8292, cfg.hidden_size)
    assert names["layers.0.mlp.gate_proj.weight"].shape == (cfg.intermediate_size, cfg.hidden_size)
    assert not any(n.endswith(".bias") for n in names)


def test_parameter_counts_grow_with_the_named_sizes():
    counts = [
        parameter_count(model_config(n, Vocab(8192)))
        for n in ("tiny", "vqlm_100m", "vqlm_300m", "vqlm_600m", "vqlm_1b", "vqlm_3b", "vqlm_7b")
    ]
    assert counts == sorted(counts)
    billions = [c / 1e9 for c in counts[1:]]
    # the names are nominal sizes: each count lies within a factor 1.5 of its name
    for nominal, got in zip((0.1, 0.3, 0.6, 1.0, 3.0, 7.0), billions, strict=True):
        assert nominal / 1.5 < got < nominal * 1.5


def test_specials_sit_above_the_codebook():
    vocab = Vocab(64)
    assert vocab.size == 64 + N_SPECIAL
    specials = {vocab.bos, vocab.eos, vocab.pad}
    assert len(specials) == 3 and min(specials) >= 64 and max(specials) < vocab.size


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(ValueError, match="vqlm_7b"):
        model_config("vqlm_9b", Vocab(64))


def test_train_config_rejects_bad_values_and_defaults_warmup_to_lvm_share():
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(data="d", out="o", steps=0)
    with pytest.raises(ValueError, match="vqlm_100m"):
        TrainConfig(data="d", out="o", model="vqlm_9b")
    assert TrainConfig(data="d", out="o", steps=288000).warmup == 8000
    assert TrainConfig(data="d", out="o", steps=10).warmup == 1
    with pytest.raises(ValueError, match="rope_theta"):
        TrainConfig(data="d", out="o", rope_theta=0.5)


def test_rope_theta_overrides_the_shape_and_defaults_to_easylm():
    assert model_config("vqlm_7b", Vocab(8192)).rope_theta == 10000.0
    assert model_config("tiny", Vocab(8192), rope_theta=500.0).rope_theta == 500.0


def test_precision_auto_is_bf16_on_cuda_only_and_bf16_or_fp32_says_so_everywhere():
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    auto = TrainConfig(data="d", out="o")
    assert auto.bf16_on(gpu) and not auto.bf16_on(cpu)
    assert auto.with_(precision="bf16").bf16_on(cpu)
    assert not auto.with_(precision="fp32").bf16_on(gpu)
    with pytest.raises(ValueError, match="--precision 'fp16' is not known; choose one of auto, bf16, fp32"):
        TrainConfig(data="d", out="o", precision="fp16")


def test_bf16_asked_for_on_a_cpu_that_emulates_it_warns_and_says_what_to_use(monkeypatch):
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    bf16 = TrainConfig(data="d", out="o", precision="bf16")
    monkeypatch.setattr(cpu_probe, "cpu_has_bf16_kernels", lambda: False)
    warning = slow_bf16_warning(bf16, cpu)
    assert warning is not None and "emulated" in warning and "--precision fp32" in warning
    assert slow_bf16_warning(bf16.with_(precision="fp32"), cpu) is None
    assert slow_bf16_warning(bf16.with_(precision="auto"), cpu) is None  # auto is float32 on the CPU
    assert slow_bf16_warning(bf16, gpu) is None
    for answer in (True, None):  # native kernels, or a torch that cannot say: nothing to warn about
        monkeypatch.setattr(cpu_probe, "cpu_has_bf16_kernels", lambda answer=answer: answer)
        assert slow_bf16_warning(bf16, cpu) is None
