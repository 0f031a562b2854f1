"""The loss log (JSONL, one record per line) and its PNG loss curve.

Records: {"kind": "train", "step", "loss", "lr", "tokens", "tokens_per_s"} and
{"kind": "val", "step", "source", "loss", "unseen_loss", "unigram_loss", "source_unigram_loss", "codes", "images",
"seen_images"};
losses in nats per token (lvm_data.train.validation says what each one means).
"""

from __future__ import annotations

import io
import json

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


def plot(records: list[dict], uri: str, title: str = "") -> None:
    """Training loss; per source the validation loss, the loss on its unseen images (dotted, when some
    held-out images also occur in training), the unigram baseline (dashed) and the same-source unigram
    (dash-dotted)."""
    fig = Figure(figsize=(11, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    train = [r for r in records if r["kind"] == "train"]
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], color="black", lw=0.8, alpha=0.6, label="train")
    val = [r for r in records if r["kind"] == "val"]
    for i, source in enumerate(sorted({r["source"] for r in val})):
        mine = [r for r in val if r["source"] == source]
        color = f"C{i}"
        ax.plot([r["step"] for r in mine], [r["loss"] for r in mine], "o-", color=color, ms=3,
                label=f"val {source}")
        partly_seen = [r for r in mine if r.get("seen_images") and r.get("unseen_loss") is not None]
        if partly_seen:
            ax.plot([r["step"] for r in partly_seen], [r["unseen_loss"] for r in partly_seen], ":", color=color,
                    label=f"val {source}, unseen images")
        ax.axhline(mine[-1]["unigram_loss"], color=color, ls="--", lw=1, label=f"unigram {source}")
        if mine[-1].get("source_unigram_loss") is not None:
            ax.axhline(mine[-1]["source_unigram_loss"], color=color, ls="-.", lw=1,
                       label=f"same-source unigram {source}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if train or val:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the curves, not over them
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    storage.write_bytes(uri, buffer.getvalue())
