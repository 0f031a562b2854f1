"""Model shapes, the token vocabulary and the training settings, as frozen dataclasses.

The LVM shapes (vqlm_100m ... vqlm_7b) are the `LLAMA_STANDARD_CONFIGS` of LVM's EasyLM fork
(github.com/ytongbai/LVM, EasyLM/models/llama/llama_model.py): hidden / intermediate / layers / heads,
context 4096, rms_norm_eps 1e-6, initializer_range 0.02, untied embeddings, vocabulary 8192 codes +
100 specials = 8292. RoPE theta 10000 is EasyLM's `precompute_freqs_cis` default. `tiny` is ours, for
CPU smoke tests. `tie_embeddings` (off for every shape, as in LVM) shares the embedding matrix with the
output head: a code's logit is then its embedding's dot product with the hidden state, so passing a code on
from the context needs no output row learnt per code (the sample-clips recipe, README "What to expect").
`rope_theta` overrides the shapes' 10000 and travels with the checkpoint and the export (Hugging Face's
`rope_theta`); what 500 did for `tiny` on the sample-clips recipe is in README "What to expect".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch

from lvm_data.tokenizer.cpu import emulated_bf16_warning

N_SPECIAL = 100  # LVM reserves 100 ids above the codebook (8192 + 100 = 8292)
IGNORE_INDEX = -100  # target value that cross-entropy skips
PRECISIONS = ("auto", "bf16", "fp32")


@dataclass(frozen=True)
class Vocab:
    """Token ids: codes are 0..codebook_size-1; specials live at codebook_size and above."""

    codebook_size: int
    n_special: int = N_SPECIAL

    @property
    def size(self) -> int:
        return self.codebook_size + self.n_special

    @property
    def bos(self) -> int:
        return self.codebook_size

    @property
    def eos(self) -> int:
        return self.codebook_size + 1

    @property
    def pad(self) -> int:
        return self.codebook_size + 2


@dataclass(frozen=True)
class ModelConfig:
    """A LLaMA decoder: RMSNorm, rotary embeddings, SwiGLU, no biases, an untied output head unless
    `tie_embeddings` (the head is then the embedding matrix)."""

    vocab_size: int = 8192 + N_SPECIAL
    hidden_size: int = 128
    intermediate_size: int = 384
    num_layers: int = 4
    num_heads: int = 4
    context: int = 1024
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    initializer_range: float = 0.02
    tie_embeddings: bool = False

    def __post_init__(self):
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise ValueError(f"hidden_size {self.hidden_size} must split into {self.num_heads} heads of even size")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> ModelConfig:
        return cls(**raw)


# name: (hidden, intermediate, layers, heads, context)
MODEL_SHAPES: dict[str, tuple[int, int, int, int, int]] = {
    "tiny": (128, 384, 4, 4, 1024),
    "vqlm_100m": (640, 1664, 22, 10, 4096),
    "vqlm_300m": (1024, 2688, 22, 8, 4096),
    "vqlm_600m": (1536, 4096, 22, 16, 4096),
    "vqlm_1b": (2048, 5504, 22, 16, 4096),
    "vqlm_3b": (3200, 8640, 26, 32, 4096),
    "vqlm_7b": (4096, 11008, 32, 32, 4096),
}


def model_config(
    name: str, vocab: Vocab, context: int | None = None, tie_embeddings: bool = False, rope_theta: float | None = None
) -> ModelConfig:
    """The named shape with the data's vocabulary; `context` and `rope_theta` override the shape's."""
    if name not in MODEL_SHAPES:
        raise ValueError(f"--model {name!r} is not a known shape; choose one of {', '.join(MODEL_SHAPES)}")
    hidden, ffn, layers, heads, default_context = MODEL_SHAPES[name]
    return ModelConfig(
        vocab_size=vocab.size,
        hidden_size=hidden,
        intermediate_size=ffn,
        num_layers=layers,
        num_heads=heads,
        context=context or default_context,
        tie_embeddings=tie_embeddings,
        rope_theta=rope_theta or ModelConfig.rope_theta,
    )


def parameter_count(cfg: ModelConfig) -> int:
    """Parameters of `LLaMA(cfg)`, by arithmetic: embeddings + blocks + final norm + the head (unless tied)."""
    d, f = cfg.hidden_size, cfg.intermediate_size
    block = 4 * d * d + 3 * d * f + 2 * d  # q,k,v,o + gate,up,down + two RMSNorm weights
    return (1 if cfg.tie_embeddings else 2) * cfg.vocab_size * d + cfg.num_layers * block + d


@dataclass(frozen=True)
class TrainConfig:
    """Everything `train` needs; built once by the CLI. Optimiser defaults are LVM's recipe
    (lr 1.5e-4 -> 3e-5 cosine, weight decay 0.1, betas 0.9/0.95, clip 1.0). Warmup defaults to LVM's
    share of the schedule (8000 of 288000 steps); decay runs to the last step unless set."""

    data: str
    out: str
    model: str = "tiny"
    steps: int = 1000
    batch_size: int = 8  # packed rows per micro-batch per rank
    grad_accum: int = 1
    context: int | None = None  # None: the model shape's context
    tie_embeddings: bool = False  # the output head shares the embedding matrix (not LVM's; see ModelConfig)
    rope_theta: float | None = None  # None: the shape's (10000, EasyLM's default)
    lr: float = 1.5e-4
    min_lr: float = 3e-5
    warmup_steps: int | None = None
    decay_steps: int | None = None
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    seed: int = 0
    val_fraction: float = 0.05
    val_tokens: int = 65536  # validation tokens kept per source
    eval_every: int = 100
    save_every: int = 500
    log_every: int = 10
    keep_checkpoints: int = 2
    num_workers: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 autocast on CUDA, float32 on CPU; or bf16 / fp32 anywhere
    compile: bool = False
    resume: bool = True

    def __post_init__(self):
        if self.model not in MODEL_SHAPES:
            raise ValueError(f"--model {self.model!r} is not a known shape; choose one of {', '.join(MODEL_SHAPES)}")
        for name in ("steps", "batch_size", "grad_accum", "eval_every", "save_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.rope_theta is not None and not self.rope_theta > 1.0:
            raise ValueError(f"rope_theta must be above 1 (the shapes use 10000), got {self.rope_theta}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision {self.precision!r} is not known; choose one of {', '.join(PRECISIONS)}")

    def bf16_on(self, device: torch.device) -> bool:
        """Whether matrix products run in bfloat16 autocast on `device`."""
        return self.precision == "bf16" or (self.precision == "auto" and device.type == "cuda")

    @property
    def warmup(self) -> int:
        return self.warmup_steps if self.warmup_steps is not None else max(1, round(self.steps * 8000 / 288000))

    @property
    def decay(self) -> int:
        return self.decay_steps if self.decay_steps is not None else self.steps

    def to_dict(self) -> dict:
        return asdict(self)

    def with_(self, **changes) -> TrainConfig:
        return replace(self, **changes)


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """'auto': this rank's GPU when CUDA is present, else the CPU. A missing device is an error, never a fallback."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available here; use --device cpu or auto")
    return device


def slow_bf16_warning(cfg: TrainConfig, device: torch.device) -> str | None:
    """The warning a run owes its user when it asked for bf16 on a CPU that emulates it; None otherwise."""
    if device.type != "cpu" or not cfg.bf16_on(device):
        return None
    return emulated_bf16_warning(
        "--precision bf16",
        "about 9x slower than float32 (the clips recipe on 2 AVX2 cores: 30 s a step against 3.4); train here "
        "with --precision fp32 (or auto)",
    )
