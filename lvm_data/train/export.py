"""Export a training checkpoint to the Hugging Face `LlamaForCausalLM` layout of LVM's released models.

OUT/config.json (llama architecture: vocabulary = codes + specials, rope theta, RMSNorm eps, untied
head unless the model was trained with tied embeddings (then `tie_word_embeddings` and no `lm_head.weight`),
BOS/EOS/PAD ids above the codebook), OUT/generation_config.json and OUT/model.safetensors
(tensor names `model.layers.N.self_attn.q_proj.weight`, ..., `lm_head.weight`). Our parameter names
and rotary layout already follow that model, so the export is a rename; `transformers` is not needed
to write it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch
from safetensors.torch import save as save_safetensors

from lvm_data import storage
from lvm_data.train import checkpoint
from lvm_data.train.config import ModelConfig, Vocab

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class ExportResult:
    out: str
    files: list[str]
    parameters: int


def hf_config(mcfg: ModelConfig, vocab: Vocab, dtype: str, extra: dict) -> dict:
    """config.json for `LlamaConfig`; rope theta is given in both the old and the new (rope_parameters) form."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": mcfg.vocab_size,
        "hidden_size": mcfg.hidden_size,
        "intermediate_size": mcfg.intermediate_size,
        "num_hidden_layers": mcfg.num_layers,
        "num_attention_heads": mcfg.num_heads,
        "num_key_value_heads": mcfg.num_heads,
        "head_dim": mcfg.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": mcfg.context,
        "rms_norm_eps": mcfg.rms_norm_eps,
        "rope_theta": mcfg.rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": mcfg.rope_theta},
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": mcfg.initializer_range,
        "tie_word_embeddings": mcfg.tie_embeddings,
        "bos_token_id": vocab.bos,
        "eos_token_id": vocab.eos,
        "pad_token_id": vocab.pad,
        "torch_dtype": dtype,
        "use_cache": True,
        "lvm_data": extra,
    }


def hf_state_dict(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Our names -> LlamaForCausalLM names (`model.` prefix except the head)."""
    out = {}
    for name, tensor in state.items():
        key = name if name.startswith("lm_head.") else f"model.{name}"
        out[key] = tensor.detach().to("cpu", dtype).contiguous()
    return out


def export(ckpt: str, out: str, dtype: str = "float32") -> ExportResult:
    """Write config.json, generation_config.json and model.safetensors for the checkpoint into `out`."""
    if dtype not in DTYPES:
        raise ValueError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    payload = checkpoint.load(ckpt)
    mcfg = ModelConfig.from_dict(payload["model_config"])
    vocab = checkpoint.vocab_of(payload)
    extra = {
        "codebook_size": vocab.codebook_size,
        "n_special": vocab.n_special,
        "tokens_per_image": payload["corpus"]["tokens_per_image"],
        "tokenizer_fingerprint": payload["corpus"]["tokenizer_fingerprint"],
        "checkpoint": payload["uri"],
        "step": payload["step"],
    }
    state = payload["model"]
    if mcfg.tie_embeddings:  # one matrix: LlamaForCausalLM ties lm_head to embed_tokens on load
        state = {name: tensor for name, tensor in state.items() if name != "lm_head.weight"}
    tensors = hf_state_dict(state, DTYPES[dtype])
    files = {
        "config.json": json.dumps(hf_config(mcfg, vocab, dtype, extra), indent=2).encode(),
        "generation_config.json": json.dumps(
            {"bos_token_id": vocab.bos, "eos_token_id": vocab.eos, "pad_token_id": vocab.pad}, indent=2
        ).encode(),
        "model.safetensors": save_safetensors(tensors, metadata={"format": "pt"}),
    }
    for name, data in files.items():
        storage.write_bytes(storage.join(out, name), data)
    return ExportResult(out, [storage.join(out, n) for n in files], sum(t.numel() for t in tensors.values()))
