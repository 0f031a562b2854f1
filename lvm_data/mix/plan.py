"""How a mix is drawn: every sentence's place from hashes and a few counts, never from one machine's sort.

- A sentence's **split** comes from a hash of its id alone (`is_validation`): adding or removing parts, or
  changing the seed, never moves a sentence between train and validation.
- Within its part a training sentence has an **order** by `row_hash(seed, part, id)`; the hash's top bits put
  it in one of the part's groups (`group_bits`: about GROUP_ROWS rows a group, so a group's rows fit one worker
  at any scale), so the part's order is group by group, by hash inside a group. `PartStats` counts rows and
  tokens per group: from their prefix sums a group knows where its rows start.
- A part taken `epochs` = k + f times is k full copies of its order plus the first sentences of it whose
  tokens start before f x its tokens (exact to one sentence). Copy c of the sentence at index i is the part's
  output position c x rows + i, dense from 0.
- Position p goes to shard p mod S: every shard holds each part's share to one sentence.
- Inside a shard `interleave` draws, sentence by sentence, from the part furthest below its share of the
  tokens so far (Megatron-Core's blending rule), so every prefix of a shard is within one sentence of the
  shares.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from lvm_data.mix.config import MixConfig

RowT = TypeVar("RowT")  # interleave's rows: whatever the caller orders

GROUP_ROWS = 20_000  # rows a hash group holds, about: what one GroupByKey value holds (tens of MB of codes)
MAX_GROUP_BITS = 20
VAL_SALT = b"lvm_data.mix.validation"
BYTES_PER_TOKEN = 1.7  # DESIGN's on-disk target: sizes shards before they are written


def hash64(*parts: bytes) -> int:
    """A 64-bit hash of `parts` (blake2b), the same on every machine."""
    return int.from_bytes(hashlib.blake2b(b"\x00".join(parts), digest_size=8).digest(), "big")


def is_validation(sentence_id: str, fraction: float) -> bool:
    """Whether a sentence is held out: a hash of its id alone, below `fraction`."""
    return fraction > 0 and hash64(VAL_SALT, sentence_id.encode()) < fraction * 2.0**64


def row_hash(seed: int, part: str, sentence_id: str) -> int:
    return hash64(str(seed).encode(), part.encode(), sentence_id.encode())


def group_bits(rows: int) -> int:
    """Hash bits that cut `rows` (an upper bound of a part's rows) into groups of about GROUP_ROWS."""
    return min(MAX_GROUP_BITS, max(0, math.ceil(math.log2(max(1.0, rows / GROUP_ROWS)))))


def group_of(h: int, bits: int) -> int:
    return h >> (64 - bits) if bits else 0


@dataclass
class PartStats:
    """Training rows and tokens of one part, per hash group."""

    rows: np.ndarray  # (groups,) int64
    tokens: np.ndarray  # (groups,) int64

    @classmethod
    def empty(cls, bits: int) -> PartStats:
        return cls(np.zeros(1 << bits, np.int64), np.zeros(1 << bits, np.int64))

    def add(self, group: int, tokens: int) -> None:
        self.rows[group] += 1
        self.tokens[group] += tokens

    def merge(self, other: PartStats) -> PartStats:
        return PartStats(self.rows + other.rows, self.tokens + other.tokens)


@dataclass(frozen=True)
class PartPlan:
    name: str
    index: int
    rows: int
    tokens: int
    epochs: float
    asked_share: float
    row_start: tuple[int, ...]  # per group: index of its first row in the part's order
    token_start: tuple[int, ...]  # per group: tokens before it

    @property
    def copies(self) -> int:
        return math.floor(self.epochs + 1e-12)

    @property
    def quota(self) -> float:
        """Tokens of the partial pass: its first sentences whose tokens start before this."""
        return (self.epochs - self.copies) * self.tokens


@dataclass(frozen=True)
class MixPlan:
    parts: tuple[PartPlan, ...]
    total_tokens: float  # the mix's training tokens asked
    train_shards: int
    validation_shards: int

    def part(self, name: str) -> PartPlan:
        return next(p for p in self.parts if p.name == name)


class MixPlanError(ValueError):
    """A mix that cannot be drawn from these inputs (an empty part): the message names the part."""


def plan_mix(config: MixConfig, stats: dict[str, PartStats], validation_tokens: int = 0) -> MixPlan:
    """Epochs, shares and shard counts from the parts' training tokens."""
    tokens = {p.name: int(stats[p.name].tokens.sum()) if p.name in stats else 0 for p in config.parts}
    empty = [p.name for p in config.parts if p.weight is not None and tokens[p.name] == 0]
    if empty:
        raise MixPlanError(
            f"part {empty[0]} selects no training sentence from its inputs, so it cannot fill its "
            "weight; check its inputs and select (or lower validation)"
        )
    if not any(tokens.values()):
        raise MixPlanError("no part selects a training sentence from its inputs; check the inputs and selects")
    fixed = sum(p.epochs * tokens[p.name] for p in config.parts if p.epochs is not None)
    weighted = [p for p in config.parts if p.weight is not None]
    weight_sum = sum(p.weight for p in weighted if p.weight is not None)
    if not weighted:
        total = fixed
    elif fixed:
        total = fixed / (1.0 - weight_sum)
    else:
        total = float(config.total_tokens or sum(tokens[p.name] for p in weighted))
    parts = []
    for index, p in enumerate(config.parts):
        if p.weight is not None:
            share = p.weight / (weight_sum if not fixed else 1.0)
        else:
            assert p.epochs is not None, "a part has exactly one of weight and epochs (lvm_data.mix.config)"
            share = p.epochs * tokens[p.name] / total if total else 0.0
        epochs = p.epochs if p.epochs is not None else share * total / tokens[p.name]
        s = stats[p.name]
        parts.append(
            PartPlan(
                p.name,
                index,
                int(s.rows.sum()),
                tokens[p.name],
                epochs,
                share,
                tuple(int(x) for x in np.concatenate([[0], np.cumsum(s.rows)[:-1]])),
                tuple(int(x) for x in np.concatenate([[0], np.cumsum(s.tokens)[:-1]])),
            )
        )
    train_shards = max(1, math.ceil(total * BYTES_PER_TOKEN / config.shard_bytes))
    validation_shards = math.ceil(validation_tokens * BYTES_PER_TOKEN / config.shard_bytes) if validation_tokens else 0
    return MixPlan(tuple(parts), total, train_shards, max(validation_shards, 1 if validation_tokens else 0))


@dataclass(frozen=True)
class Placed:
    """A training sentence's copy: its part, its position in the part's output, the shard it goes to."""

    part: int
    position: int
    copy: int

    def shard(self, shards: int) -> int:
        return self.position % shards


def place_group(part: PartPlan, group: int, sorted_tokens: Sequence[int]) -> list[list[Placed]]:
    """Per row of a group (rows sorted by hash, `sorted_tokens` their token counts): its copies."""
    out, start_tokens = [], part.token_start[group]
    for i, n in enumerate(sorted_tokens):
        index = part.row_start[group] + i
        copies = [Placed(part.index, c * part.rows + index, c) for c in range(part.copies)]
        if start_tokens < part.quota:
            copies.append(Placed(part.index, part.copies * part.rows + index, part.copies))
        out.append(copies)
        start_tokens += n
    return out


def interleave(rows: Iterable[tuple[int, int, int, RowT]]) -> list[RowT]:
    """A shard's order from (part, position, tokens, row): each part's rows by position, drawn one at a time
    from the part furthest below its share of the shard's tokens so far (ties: the lower part index)."""
    by_part: dict[int, list[tuple[int, int, RowT]]] = {}
    for part, position, tokens, row in rows:
        by_part.setdefault(part, []).append((position, tokens, row))
    queues = {p: sorted(v, key=lambda r: r[0]) for p, v in by_part.items()}
    totals = {p: sum(t for _, t, _ in q) for p, q in queues.items()}
    grand = sum(totals.values()) or 1
    share = {p: totals[p] / grand for p in queues}
    taken, heads, done, out = {p: 0 for p in queues}, {p: 0 for p in queues}, 0, []
    while True:
        open_parts = [p for p in sorted(queues) if heads[p] < len(queues[p])]
        if not open_parts:
            return out
        pick = max(open_parts, key=lambda p: (share[p] * done - taken[p], -p))
        _, tokens, row = queues[pick][heads[pick]]
        heads[pick] += 1
        taken[pick] += tokens
        done += tokens
        out.append(row)
