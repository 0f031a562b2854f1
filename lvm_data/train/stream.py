"""Packed training rows streamed from the shards, split across ranks and DataLoader workers, resumable.

Contract:
- Consumers: rank r's DataLoader worker w is consumer r * W + w of R * W (W = max(1, num_workers)).
  Each epoch the corpus's row groups are permuted by hashing (seed, epoch) and consumer k reads
  groups k, k + R*W, ...: every row group, and so every training row, is read by exactly one
  consumer per epoch. Rows within a group are permuted by hashing (seed, epoch, file, group).
- Validation rows (`shards.is_validation` over the sentences' split keys, with the spec's fraction and extra keys)
  never enter the stream.
- Packing: each sentence becomes [BOS] codes [EOS], appended back to back; a row holds context + 1
  tokens (inputs = row[:-1], targets = row[1:]) and the next row starts at the last token of the
  previous one, so no token is lost at the seams.
- Position: (epoch, group, row, packing buffer) per consumer, returned with every batch;
  `StreamLoader.state_dict()` holds all consumers' positions and the next worker in line, and a
  loader built from it continues with exactly the batches the first one would have produced.

A mix (`Corpus.mix`, from `lvm-data mix`) is read in its own order instead: the mix is the shuffle.
- One global stream: the train shards in file order, rows top to bottom, no row held out (the mix has its own
  validation split), packed as above; after the last row the mix starts again (epoch + 1, same order).
- Global batch n (B packed rows, counted from where the stream started) goes to rank n mod R, and of that
  rank's batches (n div R) to worker (n div R) mod W (`mix_owner`): rank r takes every R-th batch. Every
  consumer packs the whole stream and keeps its own batches (reading is R x W times the mix's token column;
  the packing of the others' rows is arithmetic on a buffer, no batch is built).
- Position: one for the whole stream, (epoch, shard, row, packing buffer): the next row is row `row` of
  train shard `shard` (the next shard's first when `row` is the shard's length). Each batch carries the
  position at the end of its round (after global batch R (n div R + 1) - 1), so when every rank has taken
  as many batches (the trainer steps in lockstep) all ranks hold the same position, the point after every
  batch consumed so far. A loader built from it starts there with batch 0: with the same context it
  continues at exactly the next row whatever the batch size, ranks and workers; with the same settings it
  gives exactly the batches the first one would have.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lvm_data.determinism import rng_for
from lvm_data.train.config import Vocab
from lvm_data.train.shards import Corpus, DataError, RowGroup, is_validation, read_group


@dataclass(frozen=True)
class StreamSpec:
    context: int
    batch_size: int
    seed: int = 0
    val_fraction: float = 0.0
    val_extra: tuple[str, ...] = ()  # split keys held out besides the hashed fraction (shards.small_source_holdouts)
    rank: int = 0
    world_size: int = 1
    num_workers: int = 0
    split: str = "codes"  # what the split hashes: each sentence's codes (shards.content_key), not its id

    @property
    def workers(self) -> int:
        return max(1, self.num_workers)

    @property
    def consumers(self) -> int:
        return self.world_size * self.workers


@dataclass(frozen=True)
class Position:
    """Where a consumer stands: the next row to read is row `row` of group `group` of epoch `epoch`."""

    epoch: int = 0
    group: int = 0
    row: int = 0


@dataclass(frozen=True)
class MixPosition:
    """Where a mix's stream stands: the next row is row `row` of train shard `shard` (file order), pass `epoch`."""

    epoch: int = 0
    shard: int = 0
    row: int = 0


class Packer:
    """[BOS] codes [EOS] back to back, cut into rows of context + 1 tokens that overlap by one."""

    def __init__(self, vocab: Vocab, context: int, buffer: list[int] | None = None):
        self.vocab, self.context = vocab, context
        self.buffer = np.asarray(buffer if buffer is not None else [], dtype=np.int64)

    def add(self, codes: np.ndarray) -> None:
        self.buffer = np.concatenate([self.buffer, [self.vocab.bos], codes.astype(np.int64), [self.vocab.eos]])

    def rows(self) -> Iterator[np.ndarray]:
        """Full rows, each removed from the buffer before it is handed out."""
        while len(self.buffer) >= self.context + 1:
            row = self.buffer[: self.context + 1]
            self.buffer = self.buffer[self.context :]
            yield row


def consumer_groups(corpus: Corpus, spec: StreamSpec, consumer: int, epoch: int) -> list[RowGroup]:
    order = rng_for(spec.seed, "lvm_data.train.epoch", str(epoch)).permutation(len(corpus.groups))
    return [corpus.groups[j] for j in order[consumer :: spec.consumers]]


def row_order(corpus: Corpus, spec: StreamSpec, group: RowGroup, epoch: int) -> np.ndarray:
    keys = ("lvm_data.train.rows", str(epoch), corpus.files[group.file], str(group.index))
    return rng_for(spec.seed, *keys).permutation(group.rows)


def iter_sentences(
    corpus: Corpus, spec: StreamSpec, consumer: int, start: Position = Position()
) -> Iterator[tuple[str, np.ndarray, Position]]:
    """(sentence id, codes, position after it) for one consumer's training rows, epoch after epoch."""
    if len(corpus.groups) < spec.consumers:
        raise DataError(
            f"{corpus.data}: {len(corpus.groups)} row groups for {spec.consumers} readers "
            f"({spec.world_size} ranks x {spec.workers} workers); use fewer --workers or ranks, "
            "or write shards with smaller row groups"
        )
    epoch, first_group, first_row = start.epoch, start.group, start.row
    while True:
        found = False
        for gi, group in enumerate(consumer_groups(corpus, spec, consumer, epoch)[first_group:], first_group):
            batch = read_group(corpus, group)
            held_out = is_validation(batch.split_keys(), spec.val_fraction, spec.val_extra)
            order = row_order(corpus, spec, group, epoch)
            for ri in range(first_row, len(order)):
                j = int(order[ri])
                if not held_out[j]:
                    found = True
                    yield batch.ids[j], batch.sentence(j), Position(epoch, gi, ri + 1)
            first_row = 0
        if not found and first_group == 0 and start.row == 0:
            raise DataError(
                f"{corpus.data}: reader {consumer} found no training rows in a whole epoch; "
                "lower --val-fraction or add data"
            )
        epoch, first_group, start = epoch + 1, 0, Position()


def group_starts(corpus: Corpus) -> list[int]:
    """Each row group's first row within its file."""
    starts, rows = [], {}
    for group in corpus.groups:
        starts.append(rows.get(group.file, 0))
        rows[group.file] = starts[-1] + group.rows
    return starts


def iter_mix_sentences(
    corpus: Corpus, start: MixPosition = MixPosition()
) -> Iterator[tuple[str, np.ndarray, MixPosition]]:
    """(sentence id, codes, position after it) for a mix's train rows in its order, pass after pass."""
    epoch, shard, row = start.epoch, start.shard, start.row
    starts = group_starts(corpus)
    while True:
        for group, begin in zip(corpus.groups, starts, strict=True):
            if (group.file, begin + group.rows) <= (shard, row):
                continue  # before the start
            batch = read_group(corpus, group)
            for i in range(max(0, row - begin) if group.file == shard else 0, len(batch)):
                yield batch.ids[i], batch.sentence(i), MixPosition(epoch, group.file, begin + i + 1)
        epoch, shard, row = epoch + 1, 0, 0


def mix_owner(batch: int, spec: StreamSpec) -> int:
    """The consumer that takes a mix's global batch `batch` (see the module docstring)."""
    rank, local = batch % spec.world_size, batch // spec.world_size
    return rank * spec.workers + local % spec.workers


class PackedStream(IterableDataset):
    """Yields {"tokens": (batch_size, context + 1) int64, "consumer": int, "state": dict} batches.
    `start`: each consumer's state by consumer, or for a mix the stream's one state."""

    def __init__(
        self, corpus: Corpus, vocab: Vocab, spec: StreamSpec, start: dict[Any, Any] | None = None, rotation: int = 0
    ):
        super().__init__()
        self.corpus, self.vocab, self.spec = corpus, vocab, spec
        self.start = dict(start or {})
        self.rotation = rotation

    def consumer(self, worker: int) -> int:
        return self.spec.rank * self.spec.workers + (worker + self.rotation) % self.spec.workers

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        consumer = self.consumer(info.id if info is not None else 0)
        if self.corpus.mix:
            yield from self._mix_batches(consumer)
            return
        saved = self.start.get(consumer, {})
        packer = Packer(self.vocab, self.spec.context, saved.get("buffer"))
        position = Position(**{k: saved[k] for k in ("epoch", "group", "row") if k in saved})
        rows: list[np.ndarray] = []
        sentences = iter_sentences(self.corpus, self.spec, consumer, position)
        while True:
            for row in packer.rows():
                rows.append(row)
                if len(rows) == self.spec.batch_size:
                    state = {**asdict(position), "buffer": packer.buffer.tolist()}
                    yield {"tokens": torch.from_numpy(np.stack(rows)), "consumer": consumer, "state": state}
                    rows = []
            _id, codes, position = next(sentences)
            packer.add(codes)

    def _mix_batches(self, consumer: int) -> Iterator[dict]:
        spec, saved = self.spec, self.start
        packer = Packer(self.vocab, spec.context, saved.get("buffer"))
        position = MixPosition(**{k: saved[k] for k in ("epoch", "shard", "row") if k in saved})
        sentences = iter_mix_sentences(self.corpus, position)
        batch, filled, rows, mine = 0, 0, [], None
        while True:
            for row in packer.rows():
                if mix_owner(batch, spec) == consumer:
                    rows.append(row)
                filled += 1
                if filled < spec.batch_size:
                    continue
                if rows:
                    mine, rows = torch.from_numpy(np.stack(rows)), []
                filled, batch = 0, batch + 1
                if batch % spec.world_size == 0 and mine is not None:  # the round's end: every rank's batch done
                    state = {**asdict(position), "buffer": packer.buffer.tolist()}
                    yield {"tokens": mine, "consumer": consumer, "state": state}
                    mine = None
            _id, codes, position = next(sentences)
            packer.add(codes)


class StreamLoader:
    """Batches of (batch_size, context + 1) int64 through a DataLoader, with a resumable position."""

    def __init__(self, corpus: Corpus, vocab: Vocab, spec: StreamSpec, state: dict | None = None):
        self.corpus, self.vocab, self.spec = corpus, vocab, spec
        self.positions: dict[int, dict] = {}
        self.next = 0
        self.position: dict = {}  # a mix: the stream's one position
        if state is not None:
            self._restore(state)

    def _restore(self, state: dict) -> None:
        if state.get("corpus") != self.corpus.fingerprint:
            raise DataError(
                f"{self.corpus.data}: the shard files differ from those the checkpoint was trained on, "
                "so its stream position does not apply; train into a new --out"
            )
        if self.corpus.mix:
            if state.get("order") != "mix" or state["spec"]["context"] != self.spec.context:
                raise DataError(
                    f"the checkpoint's stream position is for context {state['spec']['context']}, "
                    f"not {self.spec.context}; resume with the same context"
                )
            self.position = dict(state["position"])
            return
        if state.get("spec") != asdict(self.spec):
            raise DataError(
                f"the checkpoint's stream settings {state.get('spec')} differ from these "
                f"{asdict(self.spec)}; resume with the same batch size, context, seed, "
                "validation fraction and split, ranks and workers"
            )
        self.positions = {int(k): v for k, v in state["consumers"].items()}
        self.next = int(state["next"])

    def __iter__(self) -> Generator[torch.Tensor]:
        mix = self.corpus.mix
        dataset = PackedStream(
            self.corpus, self.vocab, self.spec, self.position if mix else self.positions, 0 if mix else self.next
        )
        workers = self.spec.num_workers
        loader = DataLoader(
            dataset, batch_size=None, num_workers=workers, multiprocessing_context="spawn" if workers else None
        )
        for item in loader:
            if mix:
                self.position = item["state"]
                yield item["tokens"]
                continue
            consumer = int(item["consumer"])
            self.positions[consumer] = item["state"]
            self.next = (consumer - self.spec.rank * self.spec.workers + 1) % self.spec.workers
            yield item["tokens"]

    def state_dict(self) -> dict:
        if self.corpus.mix:
            return {
                "corpus": self.corpus.fingerprint,
                "spec": asdict(self.spec),
                "order": "mix",
                "position": dict(self.position),
            }
        return {
            "corpus": self.corpus.fingerprint,
            "spec": asdict(self.spec),
            "consumers": {k: dict(v) for k, v in self.positions.items()},
            "next": self.next,
        }
