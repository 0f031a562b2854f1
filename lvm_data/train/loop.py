"""`train(config)`: AdamW with warmup and cosine decay on packed rows, checkpoints and exact resume.

Contract: after `train` returns, OUT holds checkpoints/ (model, optimiser, step, RNG, data positions),
log.jsonl (train loss, lr, tokens/s; per source the validation loss, its unseen images' loss, its loss with
and without earlier images of the sentence in view, and the unigram baselines) and loss.png, which is also
rewritten (atomically) after every evaluation, to watch while it trains.
Training into an OUT that holds a checkpoint continues from it: the loss curve is the one an
uninterrupted run gives (bit for bit on CPU). bf16 autocast on CUDA, float32 on CPU (`precision` says otherwise:
bf16 pays on CPUs with AMX or AVX512-BF16; on others it is emulated, and the run says so). Several ranks
(torchrun: pass `DistInfo.from_env(os.environ)`) train with DistributedDataParallel.
DATA may be a mix output (`lvm-data mix`): training then reads its train/ rows in the mix's order
(lvm_data.train.stream), its validation/ split is the held-out set (per source, from the rows' source
column; val_fraction does not apply), and a resumed run continues at the next row of the mix, also with
another number of ranks (the position is one for all ranks).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
import torch.distributed as torch_dist
from torch.nn.parallel import DistributedDataParallel

from lvm_data import storage
from lvm_data.progress import Meter, Report, silent
from lvm_data.train import checkpoint, curves, validation
from lvm_data.train.config import ModelConfig, TrainConfig, Vocab, model_config, pick_device, slow_bf16_warning
from lvm_data.train.model import LLaMA, init_weights, token_loss
from lvm_data.train.shards import Corpus, open_corpus, small_source_holdouts
from lvm_data.train.stream import StreamLoader, StreamSpec


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DistInfo:
        """The torchrun variables RANK, WORLD_SIZE, LOCAL_RANK (absent: one process)."""
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


@dataclass
class TrainResult:
    rank: int
    step: int
    out: str
    checkpoint: str | None
    train_loss: float | None
    val_loss: dict[str, float] = field(default_factory=dict)
    unigram_loss: dict[str, float] = field(default_factory=dict)  # the context-free baseline per source
    unseen_loss: dict[str, float | None] = field(default_factory=dict)  # on held-out images not in training
    tokens_per_s: float | None = None
    source_unigram_loss: dict[str, float] = field(default_factory=dict)  # under the source's own code frequencies
    first_image_loss: dict[str, float | None] = field(default_factory=dict)  # no earlier image of the sentence in view
    later_images_loss: dict[str, float | None] = field(default_factory=dict)  # one or more earlier images in view
    copy_loss: dict[str, float] = field(default_factory=dict)  # the previous-image copy baseline (validation.py)
    pooled: validation.Pooled | None = None  # every source's held-out codes at once (two or more sources)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, cosine to min_lr, then flat."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if step >= cfg.decay:
        return cfg.min_lr
    progress = (step - cfg.warmup) / max(1, cfg.decay - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def make_optimizer(model: LLaMA, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices and embeddings only (norm weights are not decayed)."""
    params = sorted(model.named_parameters())
    groups = [
        {"params": [p for _, p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for _, p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=device.type == "cuda")


class Trainer:
    """One training run; `run()` trains to `config.steps`. Built by `train`."""

    def __init__(self, cfg: TrainConfig, dist: DistInfo, log: Callable[[str], None], report: Report = silent):
        self.cfg, self.dist = cfg, dist
        self.log = log if dist.rank == 0 else (lambda _: None)  # one voice: rank 0 speaks for all
        self.report = report if dist.rank == 0 else silent
        self.device = pick_device(cfg.device, dist.local_rank)
        self.corpus: Corpus = open_corpus(cfg.data)
        self.vocab = Vocab(self.corpus.codebook_size)
        self.mcfg: ModelConfig = model_config(cfg.model, self.vocab, cfg.context, cfg.tie_embeddings, cfg.rope_theta)
        model = LLaMA(self.mcfg)
        init_weights(model, cfg.seed)
        self.model = model.to(self.device)
        self.optimizer = make_optimizer(self.model, cfg, self.device)
        self.step, self.tokens = 0, 0
        saved = self._restore()
        mix = self.corpus.mix  # a mix holds out its own validation split: no hash split of the training rows
        val_fraction = 0.0 if mix else cfg.val_fraction
        val_extra = small_source_holdouts(self.corpus, val_fraction)
        spec = StreamSpec(
            self.mcfg.context,
            cfg.batch_size,
            cfg.seed,
            val_fraction,
            val_extra,
            dist.rank,
            dist.world_size,
            cfg.num_workers,
        )
        self.loader = StreamLoader(self.corpus, self.vocab, spec, saved)
        self.batches = self.loader.__iter__()  # a generator: close() stops its DataLoader workers
        self.val_sets = self._validation_sets(val_extra) if dist.rank == 0 else []
        self.losslog = curves.LossLog(storage.join(cfg.out, curves.LOG_FILE), self.step if saved else None)
        self.ddp = (
            DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if dist.world_size > 1
            else None
        )
        self.forward = torch.compile(self.ddp or self.model) if cfg.compile else (self.ddp or self.model)
        self.last_checkpoint: str | None = None
        self.charted: int | None = None  # how many log records loss.png shows

    def _validation_sets(self, val_extra: tuple[str, ...]) -> list[validation.ValidationSet]:
        cfg = self.cfg
        sets, training = validation.held_out(
            self.corpus, self.vocab, self.mcfg.context, cfg.val_fraction, cfg.val_tokens, val_extra
        )
        if self.corpus.mix:
            self._log_mix_validation(sets)
            return sets
        scanned = "all" if training.complete else "a sample"
        self.log(
            f"training codes: {training.tokens:,} in {training.sentences:,} sentences ({scanned}), unigram "
            f"entropy {training.entropy():.4f} nats"
        )
        if sets:
            extra = (
                (
                    f" ({len(val_extra)} of them one per small source that the {cfg.val_fraction:.0%} hash "
                    "left without any)"
                )
                if val_extra
                else ""
            )
            self.log(
                f"validation: {sum(v.sentences for v in sets)} held-out sentences from "
                f"{len(sets)} of {len(self.corpus.sources)} sources{extra}"
            )
        return sets

    def _log_mix_validation(self, sets: list[validation.ValidationSet]) -> None:
        self.log(
            f"mix {self.corpus.data}: training on its train/ rows in the mix's order; validation: "
            + (
                f"{sum(v.sentences for v in sets)} sentences of its validation/ split from {len(sets)} sources"
                if sets
                else "none (the mix has no validation split)"
            )
        )

    def autocast(self):
        if self.cfg.bf16_on(self.device):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _restore(self) -> dict | None:
        """Load the latest checkpoint under OUT; returns this rank's saved data position."""
        found = checkpoint.latest(self.cfg.out)
        if found is None:
            return None
        if not self.cfg.resume:
            raise checkpoint.TrainingCheckpointError(
                f"{found}: --out already holds checkpoints and --no-resume was "
                "given; choose another --out or delete its checkpoints/"
            )
        payload = checkpoint.load(found, map_location=self.device)
        if ModelConfig.from_dict(payload["model_config"]) != self.mcfg:  # a field saved before it existed: default
            raise checkpoint.TrainingCheckpointError(
                f"{found}: trained with model {payload['model_config']}, not "
                f"{self.mcfg.to_dict()}; use the same --model/--context/"
                "--tie-embeddings/--rope-theta or a new --out"
            )
        if len(payload["data"]) != self.dist.world_size and not self.corpus.mix:
            raise checkpoint.TrainingCheckpointError(
                f"{found}: written by {len(payload['data'])} ranks; resume with as many (data positions are per rank)"
            )
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.step, self.tokens = payload["step"], payload["tokens"]
        torch.set_rng_state(payload["rng"]["cpu"].cpu())
        if self.device.type == "cuda" and payload["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(payload["rng"]["cuda"].cpu(), self.device)
        self.log(f"resuming from {found} at step {self.step}")
        if self.corpus.mix:  # one position for all ranks (lvm_data.train.stream): any world size resumes from it
            if any(p.get("position") != payload["data"][0].get("position") for p in payload["data"]):
                raise checkpoint.TrainingCheckpointError(
                    f"{found}: its ranks stand at different positions of the mix; resume from an earlier checkpoint"
                )
            return payload["data"][0]
        return payload["data"][self.dist.rank]

    def train_step(self) -> float:
        """One optimizer step over grad_accum micro-batches; returns the mean loss (all ranks)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, self.cfg)
        total = torch.zeros((), device=self.device)
        for micro in range(self.cfg.grad_accum):
            rows = next(self.batches).to(self.device, non_blocking=True)  # (B, context + 1)
            sync = self.ddp is None or micro == self.cfg.grad_accum - 1
            with self.ddp.no_sync() if self.ddp is not None and not sync else contextlib.nullcontext(), self.autocast():
                loss = token_loss(self.forward(rows[:, :-1]), rows[:, 1:]) / self.cfg.grad_accum
            loss.backward()
            total += loss.detach()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.tokens += self.cfg.batch_size * self.mcfg.context * self.cfg.grad_accum * self.dist.world_size
        if self.ddp is not None:
            torch_dist.all_reduce(total, op=torch_dist.ReduceOp.AVG)
        return float(total)

    def evaluate(self, record: bool = True) -> dict[str, validation.Score]:
        scores = validation.evaluate(self.model, self.val_sets, self.cfg.batch_size, self.autocast)
        for vset in self.val_sets:
            score = scores[vset.source]
            if record:
                self.losslog.add(
                    {
                        "kind": "val",
                        "step": self.step,
                        "source": vset.source,
                        "loss": score.loss,
                        "unseen_loss": score.unseen_loss,
                        "unigram_loss": vset.unigram_loss,
                        "source_unigram_loss": vset.source_unigram_loss,
                        "copy_loss": vset.copy_loss,
                        "codes": vset.codes,
                        "images": vset.images,
                        "seen_images": vset.seen_images,
                        "first_image_loss": score.first_loss,
                        "later_images_loss": score.later_loss,
                        "by_place": list(score.by_place),
                    }
                )
            self.log(
                f"val step {self.step} [{vset.source}] loss {score.loss:.4f} nats/token vs unigram "
                f"{vset.unigram_loss:.4f}, same-source unigram {vset.source_unigram_loss:.4f} (below: "
                f"{vset.beats(score.loss)}), previous-image copy baseline {vset.copy_loss:.4f}; "
                f"{context_phrase(score)}; {_unseen_phrase(vset, score)}"
            )
        total = validation.pooled(self.val_sets, scores)
        if total is not None:
            self.log(
                f"val step {self.step} [all {total.sources} sources, {total.codes:,} codes] {pooled_phrase(total)}"
            )
        return scores

    def save(self) -> None:
        positions = self.loader.state_dict()
        if self.ddp is not None:
            gathered: list = [None] * self.dist.world_size
            torch_dist.all_gather_object(gathered, positions)
            positions = gathered
        else:
            positions = [positions]
        if self.dist.rank == 0:
            rng = {
                "cpu": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            }
            payload = {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "tokens": self.tokens,
                "rng": rng,
                "data": positions,
                "model_config": self.mcfg.to_dict(),
                "train_config": self.cfg.to_dict(),
                "vocab": {"codebook_size": self.vocab.codebook_size, "n_special": self.vocab.n_special},
                "corpus": {
                    "data": _absolute(self.corpus.data),
                    "tokens_per_image": self.corpus.tokens_per_image,
                    "tokenizer_fingerprint": self.corpus.tokenizer_fingerprint,
                },
            }
            self.last_checkpoint = checkpoint.save(self.cfg.out, self.step, payload, self.cfg.keep_checkpoints)
            self.losslog.flush()
            self.log(f"saved {self.last_checkpoint}")

    def run(self) -> TrainResult:
        cfg = self.cfg
        self.log(
            f"model {cfg.model}: {self.model.num_parameters():,} parameters, vocabulary {self.vocab.size} "
            f"({self.vocab.codebook_size} codes), context {self.mcfg.context}, device {self.device}"
            + (", bf16 autocast" if cfg.bf16_on(self.device) else "")
        )
        if warning := slow_bf16_warning(cfg, self.device):
            self.log(f"warning: {warning}")
        val_scores = {}
        if self.dist.rank == 0 and (self.step == 0 or self.step >= cfg.steps):
            val_scores = self.evaluate(record=self.step == 0)  # at the start; or nothing left to train: report
            self.chart()
        loss, tokens_per_s, clock, clock_tokens = None, None, time.perf_counter(), self.tokens
        with Meter(f"train {cfg.model}", "steps", cfg.steps, self.report, done=self.step) as meter:
            while self.step < cfg.steps:
                loss = self.train_step()
                meter.advance(1, detail=f"loss {loss:.3f}")
                last = self.step == cfg.steps
                if self.step % cfg.log_every == 0 or last:
                    now = time.perf_counter()
                    tokens_per_s = (self.tokens - clock_tokens) / max(now - clock, 1e-9)
                    clock, clock_tokens = now, self.tokens
                    self._record(loss, tokens_per_s)
                if self.dist.rank == 0 and (self.step % cfg.eval_every == 0 or last):
                    val_scores = self.evaluate()
                    self.chart()
                if self.step % cfg.save_every == 0 or last:
                    self.save()
        return self._finish(loss, val_scores, tokens_per_s)

    def chart(self) -> None:
        """Rewrite loss.png (rank 0) unless it already shows every record: a few tenths of a second."""
        if self.dist.rank == 0 and self.charted != len(self.losslog.records):
            curves.plot(
                self.losslog.records,
                storage.join(self.cfg.out, curves.CURVE_FILE),
                f"{self.cfg.model} on {self.cfg.data}",
            )
            self.charted = len(self.losslog.records)

    def _record(self, loss: float, tokens_per_s: float) -> None:
        lr = lr_at(self.step - 1, self.cfg)
        if self.dist.rank == 0:
            self.losslog.add(
                {
                    "kind": "train",
                    "step": self.step,
                    "loss": loss,
                    "lr": lr,
                    "tokens": self.tokens,
                    "tokens_per_s": tokens_per_s,
                }
            )
        self.log(f"step {self.step}/{self.cfg.steps} loss {loss:.4f} lr {lr:.3g} {tokens_per_s:,.0f} tokens/s")

    def _finish(self, loss, val_scores, tokens_per_s) -> TrainResult:
        self.batches.close()  # stops DataLoader workers now, not at garbage collection
        if self.dist.rank == 0:
            self.losslog.flush()
        self.chart()  # the train records since the last evaluation, if any
        saved = self.last_checkpoint or checkpoint.latest(self.cfg.out)
        return TrainResult(
            self.dist.rank,
            self.step,
            self.cfg.out,
            saved,
            loss,
            {source: score.loss for source, score in val_scores.items()},
            {v.source: v.unigram_loss for v in self.val_sets},
            {source: score.unseen_loss for source, score in val_scores.items()},
            tokens_per_s,
            {v.source: v.source_unigram_loss for v in self.val_sets},
            {source: score.first_loss for source, score in val_scores.items()},
            {source: score.later_loss for source, score in val_scores.items()},
            {v.source: v.copy_loss for v in self.val_sets},
            validation.pooled(self.val_sets, val_scores) if val_scores else None,
        )


def pooled_phrase(total: validation.Pooled) -> str:
    """All sources' held-out loss against the code-weighted baselines, as the log and `train`'s last lines say it."""
    return (
        f"loss {total.loss:.4f} nats/token vs unigram {total.unigram_loss:.4f}, same-source unigrams "
        f"{total.source_unigram_loss:.4f} (below: {total.beats()}), previous-image copy baselines {total.copy_loss:.4f}"
    )


def context_phrase(score: validation.Score) -> str:
    """What the earlier images of a sentence buy: the loss with none in view against the loss with some."""
    if score.first_loss is None or score.later_loss is None:
        return "no sentence has two images in one row (no context figure)"
    return (
        f"no earlier image in view {score.first_loss:.4f}, after earlier images {score.later_loss:.4f} "
        f"(context gain {score.first_loss - score.later_loss:+.4f})"
    )


def _unseen_phrase(vset: validation.ValidationSet, score: validation.Score) -> str:
    unseen = vset.images - vset.seen_images
    if not vset.seen_images:
        return f"none of its {vset.images} images occur in training"
    if not unseen:
        images = "its one image also occurs" if vset.images == 1 else f"all {vset.images} of its images also occur"
        return f"{images} in training (memory, not generalisation)"
    return (
        f"{vset.seen_images} of its {vset.images} images also occur in training; on the {unseen} unseen: "
        f"{score.unseen_loss:.4f}"
    )


def _absolute(uri: str) -> str:
    """Local paths made absolute, so `generate` finds the data from any working directory."""
    return uri if storage.is_remote(uri) else os.path.abspath(uri)


def train(
    cfg: TrainConfig, dist: DistInfo = DistInfo(), log: Callable[[str], None] = lambda _: None, report: Report = silent
) -> TrainResult:
    """Train (or continue training) into cfg.out; see the module docstring for what OUT then holds.
    `report` gets the progress in steps (lvm_data.progress; rank 0 only)."""
    created = dist.world_size > 1 and not torch_dist.is_initialized()
    if created:
        torch_dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        return Trainer(cfg, dist, log, report).run()
    finally:
        if created:
            torch_dist.destroy_process_group()
