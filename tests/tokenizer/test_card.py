import json
import re

import numpy as np
import pytest

from lvm_data.media.samples import photos
from lvm_data.tokenizer import load
from lvm_data.tokenizer.card import EXCLUDED_VIDEOS, build_builtin, codebook_usage, command, training_videos
from lvm_data.tokenizer.inspection import load_photos, psnr
from lvm_data.tokenizer.training import TrainConfig

from .test_training import SMALL


def test_codebook_usage_counts_distinct_codes_and_perplexity():
    usage = codebook_usage(np.array([[0, 0, 1, 1], [2, 2, 3, 3]], np.uint16), 8)
    assert (usage.positions, usage.distinct, usage.codebook_size) == (8, 4, 8)
    assert usage.perplexity == pytest.approx(4.0)
    assert usage.share == 0.5
    assert codebook_usage(np.zeros((1, 4), np.uint16), 8).perplexity == pytest.approx(1.0)


def test_training_videos_leave_out_the_distorted_copy():
    names = [v.name for v in training_videos()]
    assert names and not set(names) & set(EXCLUDED_VIDEOS)


def test_command_reproduces_the_config():
    line = command(TrainConfig(steps=7, batch_size=3, crop=64, lr=2e-4, seed=5, bf16=False))
    assert "--steps 7 --batch-size 3 --crop 64 --lr 0.0002 --seed 5" in line and line.endswith("--no-bf16")


def test_build_writes_a_loadable_folder_whose_card_matches_its_weights(tmp_path):
    cfg = TrainConfig(
        steps=4,
        batch_size=2,
        crop=32,
        warmup_steps=1,
        kmeans_batches=1,
        kmeans_iters=1,
        log_every=2,
        eval_every=4,
        model=SMALL,
    )
    rows = []
    report = build_builtin(cfg, tmp_path / "tiny", log=rows.append)
    files = sorted(p.name for p in (tmp_path / "tiny").iterdir())
    assert files == ["CARD.md", "config.json", "model.safetensors", "training_log.json"]
    assert json.loads((tmp_path / "tiny" / "training_log.json").read_text()) == rows == report.result.history
    tokenizer = load(str(tmp_path / "tiny"), device="cpu")
    images = load_photos(photos("heldout"), tokenizer.image_size)
    measured = psnr(images, tokenizer.decode(tokenizer.encode(images)))
    card = (tmp_path / "tiny" / "CARD.md").read_text()
    for path, value in zip(photos("heldout"), measured, strict=True):
        assert report.heldout_psnr[path.name] == pytest.approx(value)
        assert re.search(rf"\| `{re.escape(path.name)}` \| {value:.2f} \|", card)
    assert f"**{report.mean_psnr:.2f}**" in card
    assert "4 steps of 2 crops of 32x32" in card and "--steps 4 --batch-size 2" in card
