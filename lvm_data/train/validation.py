"""Held-out sentences per source, their unigram code entropy, and the model's loss on them.

The validation loss counts only targets that are codes (not BOS/EOS/PAD), in nats per token, so it
compares directly with the unigram entropy of the same codes: the loss of the best model that ignores
context. A loss well below it means the model uses the context.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch

from lvm_data.train.config import IGNORE_INDEX, Vocab
from lvm_data.train.model import LLaMA, token_loss
from lvm_data.train.shards import Corpus, is_validation, read_group


@dataclass
class ValidationSet:
    """One source's held-out rows: inputs/targets (N, context) int64; `codes` counts scored targets."""

    source: str
    inputs: torch.Tensor
    targets: torch.Tensor
    sentences: int
    codes: int
    unigram_entropy: float


def unigram_entropy(codes: np.ndarray, codebook_size: int) -> float:
    """Plug-in entropy (nats) of the code frequencies: -sum p log p over codes that occur."""
    counts = np.bincount(codes.astype(np.int64), minlength=codebook_size)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum()) if counts.sum() else math.nan


def collect(corpus: Corpus, fraction: float, max_tokens: int, extra: tuple[str, ...] = ()
            ) -> dict[str, list[np.ndarray]]:
    """Held-out sentences per source, reading row groups in file order until each source has max_tokens."""
    found: dict[str, list[np.ndarray]] = {}
    counts: dict[str, int] = {}
    full = set()
    for group in corpus.groups:
        file_source = corpus.file_sources[group.file]
        if file_source and file_source in full:
            continue
        batch = read_group(corpus, group)
        for i in np.flatnonzero(is_validation(batch.ids, fraction, extra)):
            source = batch.sources[i]
            if source in full:
                continue
            found.setdefault(source, []).append(batch.sentence(int(i)))
            counts[source] = counts.get(source, 0) + len(found[source][-1])
            if counts[source] >= max_tokens:
                full.add(source)
        if full.issuperset(corpus.sources) and corpus.sources:
            break
    return found


def pack_rows(sentences: list[np.ndarray], vocab: Vocab, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pack as the stream does; the last row is padded; targets that are not codes are ignored."""
    stream = np.concatenate([np.concatenate([[vocab.bos], s.astype(np.int64), [vocab.eos]]) for s in sentences])
    n_rows = max(1, math.ceil((len(stream) - 1) / context))
    padded = np.full(n_rows * context + 1, vocab.pad, dtype=np.int64)
    padded[:len(stream)] = stream
    rows = np.stack([padded[i * context:i * context + context + 1] for i in range(n_rows)])
    inputs, targets = torch.from_numpy(rows[:, :-1].copy()), torch.from_numpy(rows[:, 1:].copy())
    targets[targets >= vocab.codebook_size] = IGNORE_INDEX
    return inputs, targets


def build(corpus: Corpus, vocab: Vocab, context: int, fraction: float, max_tokens: int,
          extra: tuple[str, ...] = ()) -> list[ValidationSet]:
    """One `ValidationSet` per source that has held-out sentences, sorted by source."""
    sets = []
    for source, sentences in sorted(collect(corpus, fraction, max_tokens, extra).items()):
        inputs, targets = pack_rows(sentences, vocab, context)
        codes = np.concatenate(sentences)
        sets.append(ValidationSet(source, inputs, targets, len(sentences), int((targets >= 0).sum()),
                                  unigram_entropy(codes, vocab.codebook_size)))
    return sets


@torch.no_grad()
def evaluate(model: LLaMA, sets: list[ValidationSet], batch_size: int, autocast=contextlib.nullcontext
             ) -> dict[str, float]:
    """Mean code loss (nats per token) per source. The model is put back in the mode it was in."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    losses = {}
    for vset in sets:
        total = 0.0
        for start in range(0, len(vset.inputs), batch_size):
            inputs = vset.inputs[start:start + batch_size].to(device)
            targets = vset.targets[start:start + batch_size].to(device)
            with autocast():
                logits = model(inputs)
            total += float(token_loss(logits, targets, reduction="sum"))
        losses[vset.source] = total / max(1, vset.codes)
    model.train(was_training)
    return losses
