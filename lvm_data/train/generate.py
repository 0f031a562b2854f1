"""Continue a visual sentence from the data by N images and draw prompt, generated and true images.

As LVM prompts its model: the first K images of a sentence are the prompt ([BOS] + their codes), the
model writes N x tokens_per_image more tokens, sampling (temperature, top-k) or greedily, only ever
among code ids (specials are never generated at image positions). The tokenizer decodes the codes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from lvm_data import storage
from lvm_data import tokenizer as vq
from lvm_data.determinism import derive_seed
from lvm_data.train import checkpoint
from lvm_data.train.config import Vocab, pick_device
from lvm_data.train.model import LLaMA
from lvm_data.train.shards import Corpus, DataError, is_validation, manifest_tokenizer, open_corpus, read_group


@dataclass(frozen=True)
class GenerateConfig:
    checkpoint: str
    out: str  # PNG path
    data: str | None = None  # None: the data the checkpoint was trained on
    prompt_images: int = 1
    generate: int = 1
    index: int = 0  # which suitable held-out sentence (in file order)
    greedy: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    seed: int = 0
    tokenizer: str | None = None  # None: the job's tokenizer from DATA's manifest.json
    device: str = "auto"


@dataclass
class GenerateResult:
    sentence_id: str
    source: str
    held_out: bool
    prompt: np.ndarray  # (K, tokens_per_image) codes
    generated: np.ndarray  # (N, tokens_per_image) codes
    truth: np.ndarray  # (<= N, tokens_per_image) the sentence's own next images
    sheet: str


def pick_sentence(
    corpus: Corpus, fraction: float, min_images: int, index: int, extra: tuple[str, ...] = ()
) -> tuple[str, str, bool, np.ndarray]:
    """The index-th held-out sentence with at least `min_images` images (id, source, held_out, codes);
    training sentences are used only when no held-out one qualifies (held_out is then False)."""
    for held_out in (True, False):
        seen = 0
        for group in corpus.groups:
            batch = read_group(corpus, group)
            mask = is_validation(batch.split_keys(), fraction, extra)
            for i in range(len(batch)):
                codes = batch.sentence(i)
                if mask[i] == held_out and len(codes) >= min_images * corpus.tokens_per_image:
                    if seen == index:
                        return batch.ids[i], batch.sources[i], held_out, codes
                    seen += 1
    raise DataError(
        f"{corpus.data}: fewer than {index + 1} sentences with at least {min_images} images; "
        "lower --prompt-images or --index"
    )


def _pick(
    logits: torch.Tensor, greedy: bool, temperature: float, top_k: int | None, generator: torch.Generator
) -> torch.Tensor:
    """Next code from (1, codebook) logits."""
    if greedy:
        return logits.argmax(dim=-1)
    logits = logits.float() / max(temperature, 1e-6)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)


@torch.no_grad()
def continue_codes(
    model: LLaMA, vocab: Vocab, prompt: np.ndarray, n_tokens: int, cfg: GenerateConfig, keep: int
) -> np.ndarray:
    """n_tokens codes after [BOS] + prompt. When the context fills, the last `keep` tokens are re-read."""
    context = model.config.context
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(derive_seed(cfg.seed, "lvm_data.train.generate") % 2**63)
    tokens = [vocab.bos, *prompt.astype(np.int64).tolist()]
    cache = model.new_cache(1, context)
    logits = model(torch.tensor([tokens[-context:]], device=device), cache)[:, -1]  # (1, V)
    out = []
    for _ in range(n_tokens):
        code = _pick(logits[:, : vocab.codebook_size], cfg.greedy, cfg.temperature, cfg.top_k, generator)
        out.append(int(code))
        tokens.append(int(code))
        if cache.pos == context:
            cache = model.new_cache(1, context)
            logits = model(torch.tensor([tokens[-keep:]], device=device), cache)[:, -1]
        else:
            logits = model(code.view(1, 1), cache)[:, -1]
    return np.asarray(out, dtype=np.uint16)


def draw_sheet(rows: list[tuple[str, list[np.ndarray]]], size: int) -> Image.Image:
    """A grid: one labelled row per (label, images); images are uint8 (S, S, 3)."""
    pad, label_w = 4, 90
    width = label_w + max(len(images) for _, images in rows) * (size + pad) + pad
    sheet = Image.new("RGB", (width, len(rows) * (size + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, images) in enumerate(rows):
        y = pad + r * (size + pad)
        draw.text((pad, y + size // 2), label, fill="black")
        for c, image in enumerate(images):
            sheet.paste(Image.fromarray(image), (label_w + pad + c * (size + pad), y))
    return sheet


def generate(cfg: GenerateConfig) -> GenerateResult:
    """Pick a sentence, continue it, decode prompt / generated / true images and write the PNG sheet."""
    device = pick_device(cfg.device)
    model, payload = checkpoint.load_model(cfg.checkpoint, device)
    vocab = checkpoint.vocab_of(payload)
    data = cfg.data or payload["corpus"]["data"]
    corpus = open_corpus(data)
    if corpus.codebook_size != vocab.codebook_size:
        raise DataError(
            f"{data}: codebook of {corpus.codebook_size} codes, but {payload['uri']} was trained on "
            f"{vocab.codebook_size}; pass the --data it was trained on"
        )
    tok = _tokenizer(cfg, data, corpus, device)
    tpi = corpus.tokens_per_image
    fraction = payload["train_config"]["val_fraction"]
    extra = tuple(payload["data"][0]["spec"].get("val_extra", ()))  # the split keys training held out
    sid, source, held_out, codes = pick_sentence(corpus, fraction, cfg.prompt_images, cfg.index, extra)
    prompt = codes[: cfg.prompt_images * tpi]
    keep = max(tpi, model.config.context - tpi)
    generated = continue_codes(model, vocab, prompt, cfg.generate * tpi, cfg, keep).reshape(-1, tpi)
    truth = codes[cfg.prompt_images * tpi : (cfg.prompt_images + cfg.generate) * tpi].reshape(-1, tpi)
    prompt = prompt.reshape(-1, tpi)
    rows = [("generated", list(tok.decode(np.concatenate([prompt, generated]))))]
    if len(truth):
        rows.append(("data", list(tok.decode(np.concatenate([prompt, truth])))))
    buffer = io.BytesIO()
    draw_sheet(rows, tok.image_size).save(buffer, format="PNG")
    storage.write_bytes(cfg.out, buffer.getvalue())
    return GenerateResult(sid, source, held_out, prompt, generated, truth, cfg.out)


def _tokenizer(cfg: GenerateConfig, data: str, corpus: Corpus, device: torch.device) -> vq.Tokenizer:
    uri = cfg.tokenizer or manifest_tokenizer(data)
    if uri is None:
        raise DataError(f"{data}: no manifest.json names the job's tokenizer; pass --tokenizer URI")
    tok = vq.load(uri, device=str(device))
    if tok.fingerprint != corpus.tokenizer_fingerprint:
        raise DataError(
            f"tokenizer {uri} (fingerprint {tok.fingerprint[:12]}) did not make {data} "
            f"(fingerprint {corpus.tokenizer_fingerprint[:12]}); pass the job's --tokenizer"
        )
    return tok
