"""PNG charts of an audit, drawn with matplotlib's Agg canvas (no pyplot, no global backend change).

`draw(result)` returns {file name: PNG bytes}: tokens per source, token share against the target
(or alone without --target), the sentence-length histogram and, with --deep, codebook usage.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lvm_data.audit.result import AuditResult

TOKENS_PER_SOURCE = "tokens_per_source.png"
SHARES = "share_vs_target.png"
LENGTHS = "sentence_lengths.png"
CODEBOOK = "codebook_usage.png"


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


def _figure(rows: int) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(8, max(2.5, 0.35 * rows + 1.2)), layout="constrained")
    return fig, fig.add_subplot()


def tokens_per_source(result: AuditResult) -> bytes:
    rows = result.sources
    fig, ax = _figure(len(rows))
    ax.barh([r.source for r in rows], [r.tokens for r in rows], color="#4472c4")
    ax.invert_yaxis()
    ax.set_xlabel("tokens")
    ax.set_title(f"Tokens per source ({result.total.tokens:,} in all)")
    return _png(fig)


def shares(result: AuditResult) -> bytes:
    if result.mixture is None:
        names, actual, target = [r.source for r in result.sources], [r.share for r in result.sources], None
    else:
        names = [r.name for r in result.mixture]
        actual, target = [r.actual for r in result.mixture], [r.target for r in result.mixture]
    fig, ax = _figure(len(names) * (2 if target else 1))
    y = np.arange(len(names))
    height = 0.4 if target else 0.8
    ax.barh(y - (height / 2 if target else 0), [100 * a for a in actual], height, label="actual", color="#4472c4")
    if target:
        ax.barh(y + height / 2, [100 * t for t in target], height, label="target", color="#ed7d31")
        ax.legend()
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("share of tokens (%)")
    ax.set_title("Token share against target" + (f" ({result.target.name})" if result.target else " (no --target)"))
    return _png(fig)


def lengths(result: AuditResult) -> bytes:
    items = sorted(result.lengths.items())
    fig, ax = _figure(6)
    ax.bar([str(k) for k, _ in items], [v for _, v in items], color="#4472c4")
    ax.set_xlabel("images per sentence")
    ax.set_ylabel("sentences")
    ax.set_title("Sentence lengths")
    return _png(fig)


def codebook(result: AuditResult) -> bytes:
    stats = result.codebook
    assert stats is not None, "draw() asks for the codebook chart only when the audit has codebook stats"
    usage = np.sort(np.asarray(stats.histogram, dtype=np.float64))[::-1]
    fig = Figure(figsize=(10, 3.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(np.asarray(stats.histogram), linewidth=0.4, color="#4472c4")
    left.set_xlabel("code")
    left.set_ylabel("tokens")
    left.set_title(f"Codebook usage: {stats.used:,}/{stats.codebook_size:,} codes used")
    right.semilogy(np.arange(1, usage.size + 1), np.maximum(usage, 0.5), color="#4472c4")
    right.set_xlabel("rank")
    right.set_title(f"Sorted usage: entropy {stats.entropy_bits:.2f} of {stats.max_entropy_bits:.2f} bits")
    return _png(fig)


def draw(result: AuditResult) -> dict[str, bytes]:
    charts = {TOKENS_PER_SOURCE: tokens_per_source(result), SHARES: shares(result), LENGTHS: lengths(result)}
    if result.codebook is not None:
        charts[CODEBOOK] = codebook(result)
    return charts
