import json

from PIL import Image

from lvm_data.train.curves import LossLog, plot


def test_a_resumed_log_drops_what_came_after_the_checkpoint(tmp_path):
    uri = str(tmp_path / "log.jsonl")
    log = LossLog(uri)
    for step in (1, 2, 3, 4):
        log.add({"kind": "train", "step": step, "loss": 5.0 - step})
    log.flush()
    assert [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    assert [r["step"] for r in LossLog(uri, resume_step=2).records] == [1, 2]
    assert LossLog(uri).records == []  # a fresh run starts a fresh log


def test_plot_draws_train_val_unseen_and_unigram(tmp_path):
    records = [{"kind": "train", "step": s, "loss": 5.0 / s} for s in range(1, 20)]
    records += [{"kind": "val", "step": s, "source": src, "loss": 4.0 / s, "unigram_loss": 3.0, "images": 4,
                 "seen_images": seen, "unseen_loss": 4.5 / s if seen < 4 else None}
                for s in (1, 10, 19) for src, seen in (("a", 0), ("b", 2), ("c", 4))]
    plot(records, str(tmp_path / "loss.png"), "tiny")
    image = Image.open(tmp_path / "loss.png")
    assert image.size == (1100, 500)
    colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert len(colours) > 20  # lines and text, not a blank canvas
