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
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lvm_data.sentences.base import rng_for
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
            row = self.buffer[:self.context + 1]
            self.buffer = self.buffer[self.context:]
            yield row


def consumer_groups(corpus: Corpus, spec: StreamSpec, consumer: int, epoch: int) -> list[RowGroup]:
    order = rng_for(spec.seed, "lvm_data.train.epoch", str(epoch)).permutation(len(corpus.groups))
    return [corpus.groups[j] for j in order[consumer::spec.consumers]]


def row_order(corpus: Corpus, spec: StreamSpec, group: RowGroup, epoch: int) -> np.ndarray:
    keys = ("lvm_data.train.rows", str(epoch), corpus.files[group.file], str(group.index))
    return rng_for(spec.seed, *keys).permutation(group.rows)


def iter_sentences(corpus: Corpus, spec: StreamSpec, consumer: int,
                   start: Position = Position()) -> Iterator[tuple[str, np.ndarray, Position]]:
    """(sentence id, codes, position after it) for one consumer's training rows, epoch after epoch."""
    if len(corpus.groups) < spec.consumers:
        raise DataError(f"{corpus.data}: {len(corpus.groups)} row groups for {spec.consumers} readers "
                        f"({spec.world_size} ranks x {spec.workers} workers); use fewer --workers or ranks, "
                        "or write shards with smaller row groups")
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
            raise DataError(f"{corpus.data}: reader {consumer} found no training rows in a whole epoch; "
                            "lower --val-fraction or add data")
        epoch, first_group, start = epoch + 1, 0, Position()


class PackedStream(IterableDataset):
    """Yields {"tokens": (batch_size, context + 1) int64, "consumer": int, "state": dict} batches."""

    def __init__(self, corpus: Corpus, vocab: Vocab, spec: StreamSpec, start: dict[int, dict] | None = None,
                 rotation: int = 0):
        super().__init__()
        self.corpus, self.vocab, self.spec = corpus, vocab, spec
        self.start = dict(start or {})
        self.rotation = rotation

    def consumer(self, worker: int) -> int:
        return self.spec.rank * self.spec.workers + (worker + self.rotation) % self.spec.workers

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        consumer = self.consumer(info.id if info is not None else 0)
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


class StreamLoader:
    """Batches of (batch_size, context + 1) int64 through a DataLoader, with a resumable position."""

    def __init__(self, corpus: Corpus, vocab: Vocab, spec: StreamSpec, state: dict | None = None):
        self.corpus, self.vocab, self.spec = corpus, vocab, spec
        self.positions: dict[int, dict] = {}
        self.next = 0
        if state is not None:
            self._restore(state)

    def _restore(self, state: dict) -> None:
        if state.get("corpus") != self.corpus.fingerprint:
            raise DataError(f"{self.corpus.data}: the shard files differ from those the checkpoint was trained on, "
                            "so its stream position does not apply; train into a new --out")
        if state.get("spec") != asdict(self.spec):
            raise DataError(f"the checkpoint's stream settings {state.get('spec')} differ from these "
                            f"{asdict(self.spec)}; resume with the same batch size, context, seed, "
                            "validation fraction and split, ranks and workers")
        self.positions = {int(k): v for k, v in state["consumers"].items()}
        self.next = int(state["next"])

    def __iter__(self) -> Iterator[torch.Tensor]:
        dataset = PackedStream(self.corpus, self.vocab, self.spec, self.positions, self.next)
        workers = self.spec.num_workers
        loader = DataLoader(dataset, batch_size=None, num_workers=workers,
                            multiprocessing_context="spawn" if workers else None)
        for item in loader:
            consumer = int(item["consumer"])
            self.positions[consumer] = item["state"]
            self.next = (consumer - self.spec.rank * self.spec.workers + 1) % self.spec.workers
            yield item["tokens"]

    def state_dict(self) -> dict:
        return {"corpus": self.corpus.fingerprint, "spec": asdict(self.spec),
                "consumers": {k: dict(v) for k, v in self.positions.items()}, "next": self.next}
