"""Held-out sentences per source, the unigram baseline they are judged against, and the model's loss on them.

Losses count only targets that are codes (not BOS/EOS/PAD), in nats per token. Two baselines, both
unigram losses (the held-out codes' cross-entropy under training-code frequencies plus 1/2, Jeffreys):
- the global unigram, under every training code's frequencies: the best context-free model of the corpus;
- the same-source unigram, under the training codes of the held-out set's own source: the best model that
  knows which source a sentence comes from but ignores context. Much of a gap to the global unigram can be
  a source's own code frequencies (a video's palette), so only a loss below this one shows that the model
  uses the previous images. `beats(loss)` says which of the two a loss is below.
(The held-out codes' own plug-in entropy is no such bar: a few thousand codes of an 8192-code book read
nats lower than any unigram model can score.)

Held-out sentences are new sentences, not always new images: when a corpus reuses an image (the
sample corpus derives edges, segmentation and inpainting from the same photos) a held-out image may
also occur in training, and its loss then measures memory. So each set knows which of its images
occur in the training rows scanned, and the loss on the others, the unseen images, is reported apart.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from lvm_data.determinism import rng_for
from lvm_data.train.config import IGNORE_INDEX, Vocab
from lvm_data.train.model import LLaMA, token_loss
from lvm_data.train.shards import Corpus, is_validation, read_group

BASELINE_TOKENS = 16 * 2**20  # training codes scanned for the unigram baseline and the seen-image check


@dataclass(frozen=True)
class TrainingCodes:
    """What a scan of the training rows found: code counts and a digest of every image."""

    counts: np.ndarray  # (codebook_size,) int64
    images: frozenset[bytes]
    sentences: int
    complete: bool  # every training sentence was scanned
    by_source: dict[str, np.ndarray] = field(default_factory=dict)  # source -> its training code counts

    @property
    def tokens(self) -> int:
        return int(self.counts.sum())

    def log_probs(self, source: str | None = None) -> np.ndarray:
        """Unigram log-probabilities of all training codes, or of one source's (`source`), frequencies plus 1/2
        (a code never seen still gets a finite loss)."""
        counts = self.counts if source is None else self.by_source.get(source, np.zeros_like(self.counts))
        return np.log((counts + 0.5) / (counts.sum() + 0.5 * len(counts)))

    def entropy(self) -> float:
        return unigram_entropy_of_counts(self.counts)


@dataclass
class ValidationSet:
    """One source's held-out rows: inputs/targets (N, context) int64; `unseen` marks targets whose
    image does not occur in the scanned training rows; `codes` counts scored targets."""

    source: str
    inputs: torch.Tensor
    targets: torch.Tensor
    unseen: torch.Tensor
    sentences: int
    codes: int
    images: int
    seen_images: int
    unigram_loss: float  # under all training codes
    source_unigram_loss: float  # under this source's training codes

    def beats(self, loss: float) -> str:
        """Which baselines `loss` is below: 'both', 'global unigram', 'same-source unigram' or 'neither'."""
        below = (loss < self.unigram_loss, loss < self.source_unigram_loss)
        return {
            (True, True): "both",
            (True, False): "global unigram",
            (False, True): "same-source unigram",
            (False, False): "neither",
        }[below]


@dataclass(frozen=True)
class Score:
    """A source's validation loss, and the loss on its unseen images alone (None when it has none)."""

    loss: float
    unseen_loss: float | None


def unigram_entropy_of_counts(counts: np.ndarray) -> float:
    """Plug-in entropy (nats) of code counts: -sum p log p over codes that occur."""
    total = counts.sum()
    p = counts[counts > 0] / total if total else counts[:0]
    return float(-(p * np.log(p)).sum()) if total else math.nan


def unigram_entropy(codes: np.ndarray, codebook_size: int) -> float:
    return unigram_entropy_of_counts(np.bincount(codes.astype(np.int64), minlength=codebook_size))


def image_digests(codes: np.ndarray, tokens_per_image: int) -> list[bytes]:
    return [
        hashlib.blake2b(image.tobytes(), digest_size=16).digest()
        for image in codes.astype(np.uint16).reshape(-1, tokens_per_image)
    ]


def scan_training(
    corpus: Corpus, fraction: float, extra: tuple[str, ...] = (), max_tokens: int = BASELINE_TOKENS, threads: int = 8
) -> TrainingCodes:
    """Code counts and image digests of the training rows, reading row groups in a fixed shuffled
    order (a spread sample, not the first files) until `max_tokens` codes; `threads` groups at a time,
    so a remote corpus costs a few round trips, not one per group."""
    counts = np.zeros(corpus.codebook_size, dtype=np.int64)
    by_source: dict[str, np.ndarray] = {}
    images: set[bytes] = set()
    sentences = 0
    order = [corpus.groups[j] for j in rng_for(0, "lvm_data.train.baseline").permutation(len(corpus.groups))]
    read = 0
    with ThreadPoolExecutor(max_workers=threads) as pool:
        while read < len(order) and counts.sum() < max_tokens:
            for batch in pool.map(lambda group: read_group(corpus, group), order[read : read + threads]):
                read += 1
                for i in np.flatnonzero(~is_validation(batch.split_keys(), fraction, extra)):
                    codes = batch.sentence(int(i))
                    found = np.bincount(codes, minlength=corpus.codebook_size)
                    counts += found
                    source = batch.sources[int(i)]
                    by_source[source] = by_source.get(source, 0) + found
                    images.update(image_digests(codes, corpus.tokens_per_image))
                    sentences += 1
                if counts.sum() >= max_tokens:
                    break
    return TrainingCodes(counts, frozenset(images), sentences, read == len(order), by_source)


def collect(
    corpus: Corpus, fraction: float, max_tokens: int, extra: tuple[str, ...] = ()
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
        for i in np.flatnonzero(is_validation(batch.split_keys(), fraction, extra)):
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


def _packed(parts: list[np.ndarray], before: int, after: int, fill: int, context: int) -> np.ndarray:
    """`before` part `after` back to back, cut into rows of context + 1 that overlap by one; the last is filled."""
    stream = np.concatenate([np.concatenate([[before], p.astype(np.int64), [after]]) for p in parts])
    n_rows = max(1, math.ceil((len(stream) - 1) / context))
    padded = np.full(n_rows * context + 1, fill, dtype=np.int64)
    padded[: len(stream)] = stream
    return np.stack([padded[i * context : i * context + context + 1] for i in range(n_rows)])


def pack_rows(sentences: list[np.ndarray], vocab: Vocab, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pack as the stream does; the last row is padded; targets that are not codes are ignored."""
    rows = _packed(sentences, vocab.bos, vocab.eos, vocab.pad, context)
    inputs, targets = torch.from_numpy(rows[:, :-1].copy()), torch.from_numpy(rows[:, 1:].copy())
    targets[targets >= vocab.codebook_size] = IGNORE_INDEX
    return inputs, targets


def unseen_mask(unseen_images: list[np.ndarray], tokens_per_image: int, context: int) -> torch.Tensor:
    """Aligned with `pack_rows`' targets: True where the target code's image is unseen (one flag per image
    of each sentence)."""
    rows = _packed([np.repeat(flags, tokens_per_image) for flags in unseen_images], 0, 0, 0, context)
    return torch.from_numpy(rows[:, 1:].astype(bool))


def build(
    corpus: Corpus,
    vocab: Vocab,
    context: int,
    fraction: float,
    max_tokens: int,
    extra: tuple[str, ...] = (),
    training: TrainingCodes | None = None,
) -> list[ValidationSet]:
    """One `ValidationSet` per source that has held-out sentences, sorted by source."""
    training = training if training is not None else scan_training(corpus, fraction, extra)
    log_p = training.log_probs()
    tpi = corpus.tokens_per_image
    sets = []
    for source, sentences in sorted(collect(corpus, fraction, max_tokens, extra).items()):
        inputs, targets = pack_rows(sentences, vocab, context)
        unseen_images = [np.array([d not in training.images for d in image_digests(s, tpi)]) for s in sentences]
        unseen = unseen_mask(unseen_images, tpi, context)
        codes = np.concatenate(sentences).astype(np.int64)
        images = len(codes) // tpi
        seen = images - int(sum(flags.sum() for flags in unseen_images))
        own = training.log_probs(source)
        sets.append(
            ValidationSet(
                source,
                inputs,
                targets,
                unseen,
                len(sentences),
                int((targets >= 0).sum()),
                images,
                seen,
                float(-log_p[codes].mean()),
                float(-own[codes].mean()),
            )
        )
    return sets


@torch.no_grad()
def evaluate(
    model: LLaMA,
    sets: list[ValidationSet],
    batch_size: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> dict[str, Score]:
    """Mean code loss (nats per token) per source, over all its targets and over its unseen images'.
    The model is put back in the mode it was in."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    scores = {}
    for vset in sets:
        total, unseen_total = 0.0, 0.0
        for start in range(0, len(vset.inputs), batch_size):
            inputs = vset.inputs[start : start + batch_size].to(device)
            targets = vset.targets[start : start + batch_size].to(device)
            with autocast():
                logits = model(inputs)
            losses = token_loss(logits, targets, reduction="none")  # 0 where ignored
            total += float(losses.sum())
            unseen_total += float(losses[vset.unseen[start : start + batch_size].flatten().to(device)].sum())
        unseen_codes = int(((vset.targets >= 0) & vset.unseen).sum())
        scores[vset.source] = Score(total / max(1, vset.codes), unseen_total / unseen_codes if unseen_codes else None)
    model.train(was_training)
    return scores
