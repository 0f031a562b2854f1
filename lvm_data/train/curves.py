"""The loss log (JSONL, one record per line) and its PNG loss curve.

Records: {"kind": "train", "step", "loss", "lr", "tokens", "tokens_per_s"} and
{"kind": "val", "step", "source", "loss", "unseen_loss", "unigram_loss", "source_unigram_loss", "copy_loss", "codes",
"images", "seen_images", "first_image_loss", "later_images_loss", "by_place"};
losses in nats per token (lvm_data.train.validation says what each one means).
"""

from __future__ import annotations

import io
import json
import math

from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lvm_data import storage

LOG_FILE = "log.jsonl"
CURVE_FILE = "loss.png"


class LossLog:
    """Records kept in memory and written whole (atomically) on `flush`, so it also works on gs://.

    Resuming at step S keeps the records of steps <= S: the log then continues as one curve.
    """

    def __init__(self, uri: str, resume_step: int | None = None):
        self.uri = uri
        self.records: list[dict] = []
        if resume_step is not None and storage.exists(uri):
            lines = storage.read_bytes(uri).decode().splitlines()
            self.records = [r for r in map(json.loads, filter(None, lines)) if r["step"] <= resume_step]

    def add(self, record: dict) -> None:
        self.records.append(record)

    def flush(self) -> None:
        storage.write_bytes(self.uri, "".join(json.dumps(r) + "\n" for r in self.records).encode())

    def kind(self, kind: str) -> list[dict]:
        return [r for r in self.records if r["kind"] == kind]


COLUMNS = 4  # panels per row
PANEL, MARGIN = (3.4, 2.5), (0.85, 1.25)  # inches: one panel; around them all
# (label, plot style) per kind of line, in legend order; the panel's title names the source, so one legend
# of these few entries explains every panel.
STYLES = {
    "train": ("train loss (all sources)", {"color": "black", "lw": 0.8, "alpha": 0.5}),
    "val": ("held-out loss", {"color": "C0", "marker": "o", "ms": 3}),
    "unseen": ("held-out, unseen images only", {"color": "C0", "ls": ":", "marker": "x", "ms": 3}),
    "later": ("held-out, after earlier images", {"color": "C2", "marker": "^", "ms": 3}),
    "source_unigram": ("same-source unigram", {"color": "C1", "ls": "--", "lw": 1}),
    "copy": ("previous-image copy baseline", {"color": "C3", "ls": "--", "lw": 1}),
    "unigram": ("global unigram", {"color": "grey", "ls": "-.", "lw": 1}),
}


def figure(records: list[dict], title: str = "") -> Figure:
    """The loss chart: one panel per source, on shared axes, with its held-out loss, the loss on its unseen
    images (when some held-out images also occur in training), its loss on the images after a sentence's first
    (what context buys), its two unigram baselines (horizontal) and the training loss behind them; one legend of
    at most 6 entries explains the line styles, whatever the number of sources.

    Small multiples, not one axis: with 8 sources the 16 baselines sit in a band of half a nat (8.3-8.8 on the
    sample corpus) where no colour tells them apart, and what a reader asks of each source, whether its loss is
    below its own baselines, is one panel's question.
    """
    train = [r for r in records if r["kind"] == "train"]
    val = [r for r in records if r["kind"] == "val"]
    sources: list[str | None] = sorted({r["source"] for r in val}) or [None]
    cols = min(COLUMNS, len(sources))
    rows = math.ceil(len(sources) / cols)
    width, height = max(PANEL[0] * cols + MARGIN[0], 8.0), PANEL[1] * rows + MARGIN[1]  # 8: the legend's width
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    # Fixed margins (inches), not layout="constrained": that one doubles the time to draw, which the trainer
    # pays at every evaluation
    fig.subplots_adjust(
        left=0.7 / width, right=1 - 0.15 / width, top=1 - 0.45 / height, bottom=0.85 / height, wspace=0.15, hspace=0.3
    )
    entries: dict[str, Artist] = {}
    first = None
    for i, source in enumerate(sources):
        ax = fig.add_subplot(rows, cols, i + 1, sharex=first, sharey=first)
        first = first or ax
        if train:
            entries["train"] = ax.plot([r["step"] for r in train], [r["loss"] for r in train], **STYLES["train"][1])[0]
        if source is not None:
            _panel(ax, source, [r for r in val if r["source"] == source], entries)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7, labelleft=i % cols == 0, labelbottom=i + cols >= len(sources))
    fig.supxlabel("step", y=0.4 / height, va="bottom", fontsize=9)
    fig.supylabel("loss (nats per token)", x=0.1 / width, fontsize=9)
    fig.suptitle(title, y=1 - 0.08 / height, fontsize=10)
    kinds = [kind for kind in STYLES if kind in entries]
    if kinds:
        fig.legend(
            [entries[k] for k in kinds],
            [STYLES[k][0] for k in kinds],
            loc="lower center",
            bbox_to_anchor=(0.5, 0.03 / height),
            ncols=len(kinds),
            fontsize=8,
            frameon=False,
        )
    return fig


def _panel(ax, source: str, mine: list[dict], entries: dict[str, Artist]) -> None:
    """One source's lines into `ax`; `entries` gets one line per style drawn."""
    steps = [r["step"] for r in mine]
    entries["val"] = ax.plot(steps, [r["loss"] for r in mine], **STYLES["val"][1])[0]
    partly_seen = [r for r in mine if r.get("seen_images") and r.get("unseen_loss") is not None]
    if partly_seen:
        entries["unseen"] = ax.plot(
            [r["step"] for r in partly_seen], [r["unseen_loss"] for r in partly_seen], **STYLES["unseen"][1]
        )[0]
    with_context = [r for r in mine if r.get("later_images_loss") is not None]
    if with_context:
        entries["later"] = ax.plot(
            [r["step"] for r in with_context], [r["later_images_loss"] for r in with_context], **STYLES["later"][1]
        )[0]
    last = mine[-1]
    if last.get("source_unigram_loss") is not None:
        entries["source_unigram"] = ax.axhline(last["source_unigram_loss"], **STYLES["source_unigram"][1])
    if last.get("copy_loss") is not None:
        entries["copy"] = ax.axhline(last["copy_loss"], **STYLES["copy"][1])
    entries["unigram"] = ax.axhline(last["unigram_loss"], **STYLES["unigram"][1])
    ax.set_title(f"{source}: held-out {last['loss']:.2f} at step {last['step']}", fontsize=8)


def plot(records: list[dict], uri: str, title: str = "") -> None:
    """Render `figure(records, title)` to a PNG at `uri`, atomically: a reader (a person watching a run)
    sees the previous chart or the whole new one. Agg only, no pyplot: nothing global stays open."""
    buffer = io.BytesIO()
    figure(records, title).savefig(buffer, format="png")
    storage.write_bytes(uri, buffer.getvalue())
