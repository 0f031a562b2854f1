"""How a trained checkpoint uses the previous image, source by source, on the held-out sentences its training
log scores.

The log says how much lower the loss is once earlier images are in view (`gain`); this says how. For every
image whose previous image lies in the same row it splits the model's loss into the codes that repeat the code at
the same place one image earlier and those that do not, gives the mean probability the model puts on that
previous code, and sets beside it three rules that learn nothing from the held-out rows:
- `unigram`: the same-source unigram (the training log's baseline);
- `copy`: the previous-image copy baseline (`lvm_data.train.validation`): the code at the same place with the
  source's training repeat share, the rest by the unigram;
- `bag`: the previous image's codes with no place, `--bag-weight` x their frequency in it + the rest by the unigram.
A model that copies by place puts most of its mass on the repeated codes and scores towards `copy`; one that has
learnt which codes are about, not where, scores like `bag`.

    python benchmarks/context_use.py out/clips-train                 # the training run's data and held-out split
    python benchmarks/context_use.py out/clips-train/checkpoints/step-00000600.pt --data out/sample-clips
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch

from lvm_data.train import validation
from lvm_data.train.checkpoint import load_model
from lvm_data.train.config import Vocab
from lvm_data.train.shards import open_corpus, small_source_holdouts


@dataclass(frozen=True)
class ContextUse:
    """One source's figures over its codes that have the previous image in the same row (nats per code)."""

    source: str
    images: int  # images scored: those whose previous image is in their row
    repeat_share: float  # share of their codes equal to the code at the same place one image earlier
    loss: float
    loss_on_repeats: float
    loss_on_new: float
    p_previous_on_repeats: float  # mean probability the model gives the previous image's code where it repeats
    p_previous_on_new: float  # ... where the code differs from it
    unigram: float
    copy: float
    bag: float


def image_pairs(values: torch.Tensor, targets: torch.Tensor, tokens_per_image: int) -> torch.Tensor:
    """`values` (N, context, ...) laid out like `targets`, cut per image: (M, tpi, ...) for each image whose
    targets and whose previous image's targets are all codes of one row (rows start on an image boundary when the
    context is a multiple of the image's codes)."""
    n, context = targets.shape
    if context % tokens_per_image:
        raise ValueError(
            f"context {context} is not a multiple of {tokens_per_image} codes per image; rows would not start on "
            "an image boundary (train with a context that is)"
        )
    per_image = context // tokens_per_image
    whole = (targets >= 0).reshape(n, per_image, tokens_per_image).all(-1)
    has_previous = torch.zeros_like(whole)
    has_previous[:, 1:] = whole[:, 1:] & whole[:, :-1]
    return values.reshape(n, per_image, tokens_per_image, *values.shape[2:])[has_previous]


def previous_image(targets: torch.Tensor, tokens_per_image: int) -> torch.Tensor:
    """Each target's code at the same place one image earlier in its row (garbage where there is none:
    `image_pairs` leaves those out)."""
    shifted = torch.full_like(targets, -1)
    shifted[:, tokens_per_image:] = targets[:, :-tokens_per_image]
    return shifted


@torch.no_grad()
def model_log_probs(
    model: torch.nn.Module, vset: validation.ValidationSet, batch_size: int, tokens_per_image: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p of each target, log p of the previous image's code at its place), both (N, context)."""
    model.eval()
    previous = previous_image(vset.targets, tokens_per_image).clamp(min=0)
    own, prev = [], []
    for start in range(0, len(vset.inputs), batch_size):
        logp = torch.log_softmax(model(vset.inputs[start : start + batch_size]).float(), dim=-1)
        own.append(logp.gather(-1, vset.targets[start : start + batch_size].clamp(min=0)[..., None])[..., 0])
        prev.append(logp.gather(-1, previous[start : start + batch_size][..., None])[..., 0])
    return torch.cat(own), torch.cat(prev)


def measure(
    model: torch.nn.Module,
    vset: validation.ValidationSet,
    training: validation.TrainingCodes,
    tokens_per_image: int,
    bag_weight: float = 0.5,
    batch_size: int = 1,
) -> ContextUse | None:
    """The figures for one source, or None when none of its images has its previous image in the same row."""
    tpi = tokens_per_image
    current = image_pairs(vset.targets, vset.targets, tpi)
    if not len(current):
        return None
    previous = image_pairs(previous_image(vset.targets, tpi), vset.targets, tpi)
    own, prev = model_log_probs(model, vset, batch_size, tpi)
    own, prev = image_pairs(own, vset.targets, tpi), image_pairs(prev, vset.targets, tpi)
    repeats = current == previous
    unigram = torch.from_numpy(np.exp(training.log_probs(vset.source)))[current]
    share = training.repeat_share(vset.source)
    copy = share * repeats + (1 - share) * unigram
    in_bag = (current[:, :, None] == previous[:, None, :]).sum(-1) / tpi
    bag = bag_weight * in_bag + (1 - bag_weight) * unigram
    return ContextUse(
        vset.source,
        len(current),
        float(repeats.double().mean()),
        float(-own.double().mean()),
        _mean(-own[repeats]),
        _mean(-own[~repeats]),
        _mean(prev[repeats].exp()),
        _mean(prev[~repeats].exp()),
        float(-unigram.log().mean()),
        float(-copy.log().mean()),
        float(-bag.log().mean()),
    )


def _mean(values: torch.Tensor) -> float:
    return float(values.double().mean()) if values.numel() else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description="How a trained checkpoint uses the previous image, per source.")
    parser.add_argument("checkpoint", help="a step-*.pt file or a training run's --out folder (its latest)")
    parser.add_argument("--data", help="the sentence shards (default: the data the run trained on)")
    parser.add_argument("--bag-weight", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, payload = load_model(args.checkpoint)
    run = payload["train_config"]
    corpus = open_corpus(args.data or run["data"])
    fraction = run["val_fraction"]
    extra = () if corpus.mix else small_source_holdouts(corpus, fraction)  # as `train` splits it
    vocab = Vocab(corpus.codebook_size)
    sets, training = validation.held_out(corpus, vocab, model.config.context, fraction, run["val_tokens"], extra)
    print(f"{payload['uri']} (step {payload['step']}) on {corpus.data}; nats per code, codes after a previous image")
    print(
        f"{'source':20s} {'images':>6s} {'repeat':>6s} {'model':>6s} {'on rep':>6s} {'on new':>6s} "
        f"{'p(prev) rep':>11s} {'new':>5s} {'unigram':>7s} {'copy':>5s} {'bag':>5s}"
    )
    for vset in sets:
        use = measure(model, vset, training, corpus.tokens_per_image, args.bag_weight, args.batch_size)
        if use is None:
            print(f"{vset.source:20s} no image with its previous image in the same row")
            continue
        print(
            f"{use.source:20s} {use.images:6d} {use.repeat_share:6.2f} {use.loss:6.2f} {use.loss_on_repeats:6.2f} "
            f"{use.loss_on_new:6.2f} {use.p_previous_on_repeats:11.3f} {use.p_previous_on_new:5.3f} "
            f"{use.unigram:7.2f} {use.copy:5.2f} {use.bag:5.2f}"
        )


if __name__ == "__main__":
    main()
