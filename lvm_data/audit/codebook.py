"""`--deep`: what the tokens themselves say. Codebook usage, entropy, dead codes, exact duplicates.

`row_tokens` looks at one row group's `tokens` column (per-row lengths, rows with codes out of range,
a histogram, a 128-bit digest per sentence); `CodeTally` adds them up per source; `summarize` turns
the totals into `CodebookStats` for the report.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

CODE_SPACE = 1 << 16  # every uint16 value, so out-of-range codes are counted too


@dataclass
class RowTokens:
    """One row group's tokens: per-row lengths, a mask of rows with a code >= codebook size,
    the code histogram (CODE_SPACE bins) and a (rows, 2) uint64 blake2b-128 digest per row."""

    lengths: np.ndarray
    out_of_range: np.ndarray
    histogram: np.ndarray
    digests: np.ndarray


def row_tokens(tokens: pa.ListArray | pa.ChunkedArray, codebook_size: int) -> RowTokens:
    if isinstance(tokens, pa.ChunkedArray):
        tokens = tokens.combine_chunks()
    values = tokens.flatten().to_numpy(zero_copy_only=False).astype(np.uint16, copy=False)
    offsets = tokens.offsets.to_numpy().astype(np.int64)
    offsets -= offsets[0]
    out_of_range = np.zeros(len(tokens), bool)
    bad = np.flatnonzero(values >= codebook_size)
    if bad.size:
        out_of_range[np.searchsorted(offsets, bad, side="right") - 1] = True
    digests = b"".join(
        hashlib.blake2b(values[a:b], digest_size=16).digest()
        for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)
    )
    return RowTokens(
        lengths=np.diff(offsets),
        out_of_range=out_of_range,
        histogram=np.bincount(values, minlength=CODE_SPACE).astype(np.int64),
        digests=np.frombuffer(digests, np.uint64).reshape(-1, 2),
    )


@dataclass
class CodeTally:
    """Code histograms and codebook sizes per source, and sentence digests in corpus row order."""

    histograms: dict[str, np.ndarray] = field(default_factory=dict)
    digests: list[np.ndarray] = field(default_factory=list)
    codebook_sizes: dict[str, int] = field(default_factory=dict)

    def add(self, source: str, histogram: np.ndarray, codebook_size: int) -> None:
        if source in self.histograms:
            self.histograms[source] += histogram
        else:
            self.histograms[source] = histogram.copy()
        self.codebook_sizes[source] = max(codebook_size, self.codebook_sizes.get(source, 0))

    def merge(self, other: CodeTally) -> None:
        for source, histogram in other.histograms.items():
            self.add(source, histogram, other.codebook_sizes.get(source, 0))
        self.digests.extend(other.digests)


def duplicate_rows(digests: np.ndarray) -> list[np.ndarray]:
    """Groups of row positions whose token sequences are identical (same 128-bit digest)."""
    if digests.size == 0:
        return []
    _, inverse, counts = np.unique(digests, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    groups = np.split(order, np.cumsum(counts)[:-1])
    return [g for g in groups if g.size > 1]


def entropy_bits(histogram: np.ndarray) -> float:
    total = histogram.sum()
    if total == 0:
        return 0.0
    p = histogram[histogram > 0] / total
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: never -0.0


@dataclass
class CodebookStats:
    """Usage of the codebook over a corpus (codes < codebook_size; codes above are counted apart)."""

    codebook_size: int
    tokens: int
    used: int
    dead_codes: list[int]
    entropy_bits: float
    top1pct_share: float  # share of all tokens taken by the most used 1 % of codes
    out_of_range_tokens: int
    per_source: dict[str, dict]
    histogram: list[int]
    duplicate_sentences: int = 0  # rows that repeat an earlier row exactly
    duplicate_examples: list[list[str]] = field(default_factory=list)

    @property
    def max_entropy_bits(self) -> float:
        return math.log2(self.codebook_size) if self.codebook_size else 0.0

    def to_dict(self) -> dict:
        keys = (
            "codebook_size",
            "tokens",
            "used",
            "entropy_bits",
            "top1pct_share",
            "out_of_range_tokens",
            "per_source",
            "duplicate_sentences",
            "duplicate_examples",
            "dead_codes",
            "histogram",
        )
        return {"max_entropy_bits": self.max_entropy_bits, **{k: getattr(self, k) for k in keys}}


def summarize(tally: CodeTally, codebook_size: int) -> CodebookStats:
    """Codebook statistics from per-source histograms (duplicates are filled in by the caller). The
    corpus-wide figures use `codebook_size`; each source's use its own tokenizer's codebook size."""
    total = np.zeros(CODE_SPACE, np.int64)
    for histogram in tally.histograms.values():
        total += histogram
    usage = total[:codebook_size]
    top = np.sort(usage)[::-1][: max(1, codebook_size // 100)]
    per_source = {}
    for source, histogram in sorted(tally.histograms.items()):
        own = histogram[: tally.codebook_sizes.get(source) or codebook_size]  # a source's own tokenizer
        per_source[source] = {
            "codebook_size": own.size,
            "tokens": int(own.sum()),
            "used": int((own > 0).sum()),
            "entropy_bits": entropy_bits(own),
        }
    return CodebookStats(
        codebook_size=codebook_size,
        tokens=int(total.sum()),
        used=int((usage > 0).sum()),
        dead_codes=np.flatnonzero(usage == 0).tolist(),
        entropy_bits=entropy_bits(usage),
        top1pct_share=float(top.sum() / usage.sum()) if usage.sum() else 0.0,
        out_of_range_tokens=int(total[codebook_size:].sum()),
        per_source=per_source,
        histogram=usage.tolist(),
    )
