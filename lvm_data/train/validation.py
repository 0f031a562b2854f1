"""Held-out sentences per source, the unigram baseline they are judged against, and the model's loss on them.

Losses count only targets that are codes (not BOS/EOS/PAD), in nats per token. Two baselines, both
unigram losses (the held-out codes' cross-entropy under training-code frequencies plus 1/2, Jeffreys):
- the global unigram, under every training code's frequencies: the best context-free model of the corpus;
- the same-source unigram, under the training codes of the held-out set's own source: the best model that
  knows which source a sentence comes from but ignores context. Much of a gap to the global unigram can be
  a source's own code frequencies (a video's palette), so only a loss below this one shows that the model
  uses the previous images. `beats(loss)` says which of the two a loss is below.
A third figure says how much of the previous images there is to use: the previous-image copy baseline, which
gives each code after a sentence's first image the share `a` of its source's training codes that equal the code
at the same place one image earlier, and the rest by the same-source unigram: p = a [code = that code] +
(1 - a) p_unigram (its first image: the unigram alone). One number per source, no learning; on video clips
(most of a frame is the frame before) it is the bar that a model which uses context should reach.
(The held-out codes' own plug-in entropy is no such bar: a few thousand codes of an 8192-code book read
nats lower than any unigram model can score.)
`pooled` puts every source's held-out codes together, each code under its own source's baselines: the corpus's
verdict, where one small source's figure moves from seed to seed.

Held-out sentences are new sentences, not always new images: when a corpus reuses an image (the
sample corpus derives edges, segmentation and inpainting from the same photos) a held-out image may
also occur in training, and its loss then measures memory. So each set knows which of its images
occur in the training rows scanned, and the loss on the others, the unseen images, is reported apart.

Beating the same-source unigram is not yet proof of context either: a model that has learnt a video from
its training clips predicts a held-out clip's first frame well with nothing before it. So each held-out
sentence is read from its own start (its first row begins with its BOS, never with the end of another
sentence), and every scored code knows its place: how many earlier images of its sentence are wholly in
view in its row. The loss at place 0 (no earlier image in view) against the loss at places 1 and up is what
the previous images buy; where a sentence's images are alike (frames of a clip) that difference is the
model's use of context.
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
from lvm_data.train.shards import Corpus, is_validation, open_mix_validation, read_group

BASELINE_TOKENS = 16 * 2**20  # training codes scanned for the unigram baseline and the seen-image check


@dataclass(frozen=True)
class TrainingCodes:
    """What a scan of the training rows found: code counts and a digest of every image."""

    counts: np.ndarray  # (codebook_size,) int64
    images: frozenset[bytes]
    sentences: int
    complete: bool  # every training sentence was scanned
    by_source: dict[str, np.ndarray] = field(default_factory=dict)  # source -> its training code counts
    # source -> (codes equal to the code at the same place one image earlier, codes with an image before them)
    repeats: dict[str, tuple[int, int]] = field(default_factory=dict)

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

    def repeat_share(self, source: str) -> float:
        """Share of `source`'s training codes (after a sentence's first image) that repeat the previous image's,
        Jeffreys-smoothed like the unigrams (a source whose every code repeats still leaves a new code a finite
        loss); 0 where no training sentence has two images."""
        equal, codes = self.repeats.get(source, (0, 0))
        return (equal + 0.5) / (codes + 1) if codes else 0.0


@dataclass
class ValidationSet:
    """One source's held-out rows (`sentence_rows`): inputs/targets (N, context) int64; `unseen` marks targets
    whose image does not occur in the scanned training rows; `places` holds each target's place (-1 where it is
    not a code); `codes` counts scored targets."""

    source: str
    inputs: torch.Tensor
    targets: torch.Tensor
    unseen: torch.Tensor
    places: torch.Tensor
    sentences: int
    codes: int
    images: int
    seen_images: int
    unigram_loss: float  # under all training codes
    source_unigram_loss: float  # under this source's training codes
    copy_loss: float  # the previous-image copy baseline (module docstring)

    def beats(self, loss: float) -> str:
        """Which baselines `loss` is below: 'both', 'global unigram', 'same-source unigram' or 'neither'."""
        return baselines_below(loss, self.unigram_loss, self.source_unigram_loss)


def baselines_below(loss: float, unigram_loss: float, source_unigram_loss: float) -> str:
    below = (loss < unigram_loss, loss < source_unigram_loss)
    return {
        (True, True): "both",
        (True, False): "global unigram",
        (False, True): "same-source unigram",
        (False, False): "neither",
    }[below]


@dataclass(frozen=True)
class Pooled:
    """Every held-out code of every source at once, each weighing the same: the model's mean loss and each
    baseline's, a code's same-source unigram and copy baseline being those of its own source. One figure for
    the whole corpus where a small source's seed-dependent result would otherwise decide the verdict."""

    sources: int
    codes: int
    loss: float
    unigram_loss: float
    source_unigram_loss: float
    copy_loss: float

    def beats(self) -> str:
        return baselines_below(self.loss, self.unigram_loss, self.source_unigram_loss)


def pooled(sets: list[ValidationSet], scores: dict[str, Score]) -> Pooled | None:
    """The code-weighted mean over `sets` of the model's loss and the baselines; None for fewer than two sets."""
    if len(sets) < 2:
        return None
    codes = sum(v.codes for v in sets)

    def mean(value: Callable[[ValidationSet], float]) -> float:
        return sum(value(v) * v.codes for v in sets) / max(1, codes)

    return Pooled(
        len(sets),
        codes,
        mean(lambda v: scores[v.source].loss),
        mean(lambda v: v.unigram_loss),
        mean(lambda v: v.source_unigram_loss),
        mean(lambda v: v.copy_loss),
    )


@dataclass(frozen=True)
class Score:
    """A source's validation loss, the loss on its unseen images alone (None when it has none), and by place:
    `by_place[k]` is the loss on codes with k earlier images of their sentence in view, `later_loss` the loss on
    all codes with at least one (None when no sentence has two images in one row)."""

    loss: float
    unseen_loss: float | None
    by_place: tuple[float, ...] = ()
    later_loss: float | None = None

    @property
    def first_loss(self) -> float | None:
        """The loss on codes with no earlier image in view."""
        return self.by_place[0] if self.by_place else None

    @property
    def context_gain(self) -> float | None:
        """How much lower the loss is once earlier images are in view (nats per code): first minus later."""
        if self.first_loss is None or self.later_loss is None:
            return None
        return self.first_loss - self.later_loss


def unigram_entropy_of_counts(counts: np.ndarray) -> float:
    """Plug-in entropy (nats) of code counts: -sum p log p over codes that occur."""
    total = counts.sum()
    p = counts[counts > 0] / total if total else counts[:0]
    return float(-(p * np.log(p)).sum()) if total else math.nan


def unigram_entropy(codes: np.ndarray, codebook_size: int) -> float:
    return unigram_entropy_of_counts(np.bincount(codes.astype(np.int64), minlength=codebook_size))


def repeats(codes: np.ndarray, tokens_per_image: int) -> tuple[int, int]:
    """(codes equal to the code at the same place one image earlier, codes with an image before them)."""
    images = codes.reshape(-1, tokens_per_image)
    return int((images[1:] == images[:-1]).sum()), images[1:].size


def copy_baseline_loss(sentences: list[np.ndarray], log_p: np.ndarray, share: float, tokens_per_image: int) -> float:
    """Mean nats per code of the previous-image copy baseline (module docstring) over `sentences`."""
    losses = []
    for codes in sentences:
        images = codes.astype(np.int64).reshape(-1, tokens_per_image)
        losses.append(-log_p[images[0]])
        repeat = images[1:] == images[:-1]
        losses.append(-np.log((1 - share) * np.exp(log_p[images[1:]]) + share * repeat).ravel())
    return float(np.concatenate(losses).mean())


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
    repeated: dict[str, tuple[int, int]] = {}
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
                    equal, after_first = repeats(codes, corpus.tokens_per_image)
                    before = repeated.get(source, (0, 0))
                    repeated[source] = (before[0] + equal, before[1] + after_first)
                    images.update(image_digests(codes, corpus.tokens_per_image))
                    sentences += 1
                if counts.sum() >= max_tokens:
                    break
    return TrainingCodes(counts, frozenset(images), sentences, read == len(order), by_source, repeated)


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


@dataclass(frozen=True)
class Rows:
    """Validation rows, (N, context) each: `targets` are codes or IGNORE_INDEX; `images` the target's image,
    numbered across all the sentences given, and `places` its place (both -1 where the target is not a code)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    images: torch.Tensor
    places: torch.Tensor


def sentence_rows(sentences: list[np.ndarray], vocab: Vocab, context: int, tokens_per_image: int) -> Rows:
    """Each sentence read from its own start: BOS codes EOS cut into rows of context + 1 tokens that overlap by
    one (the last filled with PAD), rows with no code to score left out. A code's place is the number of earlier
    images of its sentence wholly among its row's inputs."""
    parts = []
    first_image = 0
    for codes in sentences:
        parts.append(_one_sentence_rows(codes, vocab, context, tokens_per_image, first_image))
        first_image += len(codes) // tokens_per_image
    if not parts:
        empty = torch.zeros((0, context), dtype=torch.int64)
        return Rows(empty, empty, empty, empty)
    return Rows(*(torch.from_numpy(np.concatenate(column)) for column in zip(*parts, strict=True)))


def _one_sentence_rows(
    codes: np.ndarray, vocab: Vocab, context: int, tpi: int, first_image: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    stream = np.concatenate([[vocab.bos], codes.astype(np.int64), [vocab.eos]])
    n_rows = max(1, math.ceil((len(stream) - 1) / context))
    padded = np.full(n_rows * context + 1, vocab.pad, dtype=np.int64)
    padded[: len(stream)] = stream
    rows = np.stack([padded[j * context : j * context + context + 1] for j in range(n_rows)])
    code_index = np.arange(n_rows * context).reshape(n_rows, context)  # target t of row j is code j * context + t
    is_code = code_index < len(codes)
    image = code_index // tpi
    # row j's inputs hold codes j * context - 1 onwards: the first image wholly in view starts there or later
    whole_from = np.maximum(0, -(-(np.arange(n_rows) * context - 1) // tpi))
    place = np.maximum(0, image - whole_from[:, None])
    keep = is_code.any(axis=1)
    targets = np.where(is_code, rows[:, 1:], IGNORE_INDEX)
    return (
        rows[keep, :-1],
        targets[keep],
        np.where(is_code, image + first_image, -1)[keep],
        np.where(is_code, place, -1)[keep],
    )


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
        rows = sentence_rows(sentences, vocab, context, tpi)
        unseen_images = np.concatenate([[d not in training.images for d in image_digests(s, tpi)] for s in sentences])
        unseen = torch.from_numpy(np.append(unseen_images, False))[rows.images]  # image -1 (not a code): False
        codes = np.concatenate(sentences).astype(np.int64)
        images = len(codes) // tpi
        seen = images - int(unseen_images.sum())
        own = training.log_probs(source)
        sets.append(
            ValidationSet(
                source,
                rows.inputs,
                rows.targets,
                unseen,
                rows.places,
                len(sentences),
                int((rows.targets >= 0).sum()),
                images,
                seen,
                float(-log_p[codes].mean()),
                float(-own[codes].mean()),
                copy_baseline_loss(sentences, own, training.repeat_share(source), tpi),
            )
        )
    return sets


def held_out(
    corpus: Corpus, vocab: Vocab, context: int, fraction: float, max_tokens: int, extra: tuple[str, ...] = ()
) -> tuple[list[ValidationSet], TrainingCodes]:
    """The sets `train` scores and the training codes they are judged against: for a mix (`corpus.mix`) its
    validation/ split, every row held out, against its train/ rows; otherwise the hash split (`fraction`, and
    `extra`: `shards.small_source_holdouts`) against the rest."""
    if corpus.mix:
        training = scan_training(corpus, 0.0)
        split = open_mix_validation(corpus)
        return ([] if split is None else build(split, vocab, context, 1.0, max_tokens, (), training)), training
    training = scan_training(corpus, fraction, extra)
    return build(corpus, vocab, context, fraction, max_tokens, extra, training), training


@torch.no_grad()
def evaluate(
    model: LLaMA,
    sets: list[ValidationSet],
    batch_size: int,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> dict[str, Score]:
    """Mean code loss (nats per token) per source: over all its targets, over its unseen images' and by place.
    The model is put back in the mode it was in."""
    was_training = model.training
    model.eval()
    scores = {}
    for vset in sets:
        losses = torch.cat(
            [
                _row_losses(
                    model, vset.inputs[start : start + batch_size], vset.targets[start : start + batch_size], autocast
                )
                for start in range(0, len(vset.inputs), batch_size)
            ]
        ).double()
        scores[vset.source] = _score(losses, vset)
    model.train(was_training)
    return scores


def _row_losses(
    model: LLaMA,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> torch.Tensor:
    device = next(model.parameters()).device
    with autocast():
        logits = model(inputs.to(device))
    return token_loss(logits, targets.to(device), reduction="none").reshape(targets.shape).cpu()  # 0 where ignored


def _score(losses: torch.Tensor, vset: ValidationSet) -> Score:
    """`losses` (N, context), 0 where the target is ignored."""
    scored = vset.targets >= 0
    unseen_codes = int((scored & vset.unseen).sum())
    places = vset.places[scored]
    by_place_sum = torch.bincount(places, weights=losses[scored])
    by_place_count = torch.bincount(places, minlength=len(by_place_sum))
    later = places >= 1
    return Score(
        float(losses.sum()) / max(1, vset.codes),
        float(losses[vset.unseen].sum()) / unseen_codes if unseen_codes else None,
        tuple(float(total / n) if n else math.nan for total, n in zip(by_place_sum, by_place_count, strict=True)),
        float(losses[scored][later].mean()) if bool(later.any()) else None,
    )
