import json

import pytest
from PIL import Image

from lvm_data.train.curves import LossLog, figure, plot


def test_a_resumed_log_drops_what_came_after_the_checkpoint(tmp_path):
    uri = str(tmp_path / "log.jsonl")
    log = LossLog(uri)
    for step in (1, 2, 3, 4):
        log.add({"kind": "train", "step": step, "loss": 5.0 - step})
    log.flush()
    assert [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    assert [r["step"] for r in LossLog(uri, resume_step=2).records] == [1, 2]
    assert LossLog(uri).records == []  # a fresh run starts a fresh log


def val_records(sources, steps=(0, 10, 19), seen=0, later=False):
    return [
        {
            "later_images_loss": 3.5 / (s + 1) if later else None,
            "kind": "val",
            "step": s,
            "source": src,
            "loss": 4.0 / (s + 1),
            "unigram_loss": 3.0,
            "source_unigram_loss": 3.2,
            "images": 4,
            "seen_images": seen,
            "unseen_loss": 4.5 / (s + 1),
        }
        for s in steps
        for src in sources
    ]


def test_plot_draws_train_val_unseen_and_unigram(tmp_path):
    records = [{"kind": "train", "step": s, "loss": 5.0 / s} for s in range(1, 20)]
    records += [
        {
            "kind": "val",
            "step": s,
            "source": src,
            "loss": 4.0 / s,
            "unigram_loss": 3.0,
            "images": 4,
            "seen_images": seen,
            "unseen_loss": 4.5 / s if seen < 4 else None,
        }
        for s in (1, 10, 19)
        for src, seen in (("a", 0), ("b", 2), ("c", 4))
    ]
    plot(records, str(tmp_path / "loss.png"), "tiny")
    image = Image.open(tmp_path / "loss.png")
    assert image.format == "PNG" and image.size[0] >= 800
    colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert len(colours) > 20  # lines and text, not a blank canvas
    plot(records[:30], str(tmp_path / "loss.png"), "tiny")  # rewritten in place, through a temporary file
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]


@pytest.mark.parametrize("n", [1, 3, 8, 13])
def test_the_legend_explains_line_styles_once_whatever_the_number_of_sources(n):
    sources = [f"source-{i:02d}" for i in range(n)]
    records = [{"kind": "train", "step": s, "loss": 5.0 / s} for s in range(1, 20)]
    records += val_records(sources, seen=2, later=True)
    fig = figure(records, "tiny")
    [legend] = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == [
        "train loss (all sources)",
        "held-out loss",
        "held-out, unseen images only",
        "held-out, after earlier images",
        "same-source unigram",
        "global unigram",
    ]
    assert len(labels) <= n + 5
    panels = fig.get_axes()
    assert [ax.get_title().split(":")[0] for ax in panels] == sources  # one panel per source, named
    assert all(ax.get_legend() is None for ax in panels)
    assert fig.get_suptitle() == "tiny" and "nats" in fig.get_supylabel() and fig.get_supxlabel() == "step"


def test_the_legend_names_only_the_lines_drawn():
    fig = figure(val_records(["a", "b"]))  # no train records yet (the evaluation at step 0), no seen images
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "held-out loss",
        "same-source unigram",
        "global unigram",
    ]
    fig = figure([{"kind": "train", "step": 1, "loss": 5.0}])  # no validation sets: one panel, train only
    assert len(fig.get_axes()) == 1 and [t.get_text() for t in fig.legends[0].get_texts()] == [
        "train loss (all sources)"
    ]
    assert figure([]).legends == []


def test_the_copy_baseline_is_drawn_when_the_log_has_it():
    records = [{**r, "copy_loss": 1.5} for r in val_records(["a"])]
    labels = [t.get_text() for t in figure(records).legends[0].get_texts()]
    assert labels == ["held-out loss", "same-source unigram", "previous-image copy baseline", "global unigram"]
