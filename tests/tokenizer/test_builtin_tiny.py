"""The shipped `builtin:tiny` tokenizer: it loads, it is small, and it really reconstructs photos it never saw."""

import json
import re

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lvm_data.media.samples import photos
from lvm_data.tokenizer import load
from lvm_data.tokenizer.inspection import load_photos, psnr
from lvm_data.tokenizer.locations import builtin_dir
from lvm_data.tokenizer.training import MUSE_CONFIG_KEYS

# A little under what the shipped weights reach (CARD.md): a retrained or damaged checkpoint that loses
# more than about half a dB fails here.
MEAN_PSNR_FLOOR = 17.2  # shipped: 17.69 dB
PHOTO_PSNR_FLOOR = 14.3  # shipped: 14.80 dB (grace_hopper.jpg)


@pytest.fixture(scope="module")
def tiny():
    return load("builtin:tiny", device="cpu")


@pytest.fixture(scope="module")
def heldout(tiny):
    """(names, images, reconstructions) of the held-out photos, squashed to 256 x 256."""
    paths = photos("heldout")
    images = load_photos(paths, tiny.image_size)
    return [p.name for p in paths], images, tiny.decode(tiny.encode(images))


def test_loads_as_builtin_tiny_with_lvm_token_geometry(tiny):
    assert tiny.format == "open-muse"
    assert (tiny.image_size, tiny.tokens_per_image, tiny.codebook_size) == (256, 256, 8192)
    assert tiny.config.hidden_channels >= 32 and len(tiny.config.channel_mult) == 5  # f = 16


def test_files_are_small_float32_open_muse():
    folder = builtin_dir("tiny")
    assert (folder / "model.safetensors").stat().st_size <= 10_000_000
    raw = json.loads((folder / "config.json").read_text())
    assert set(raw) == set(MUSE_CONFIG_KEYS) | {"_class_name", "_version"}
    assert raw["_class_name"] == "VQGANModel"
    assert {t.dtype for t in load_file(str(folder / "model.safetensors")).values()} == {torch.float32}


def test_heldout_round_trip_psnr(heldout):
    names, images, recon = heldout
    values = psnr(images, recon)
    assert values.mean() >= MEAN_PSNR_FLOOR, dict(zip(names, values.round(2), strict=True))
    assert values.min() >= PHOTO_PSNR_FLOOR, dict(zip(names, values.round(2), strict=True))


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())


@pytest.mark.parametrize(
    "wrong", ["red_blue_swapped", "transposed", "signed_range_read_as_unit", "unit_range_read_as_signed"]
)
def test_round_trip_is_far_closer_to_the_image_than_to_its_convention_mistakes(heldout, wrong):
    """A channel flip, an H/W transposition or a [0, 1] vs [-1, 1] mix-up anywhere in the round trip
    would make the reconstruction look like one of these instead of the input. "Far closer": at most half
    the squared error (3 dB), summed over the three photos; the shipped weights give 2.9x for the R/B swap
    (grace_hopper.jpg alone barely changes when its red and blue are swapped) and 4.5x or more for the others."""
    _, images, recon = heldout
    x = images.astype(np.float64)
    mistaken = {
        "red_blue_swapped": x[..., ::-1],
        "transposed": x.transpose(0, 2, 1, 3),
        "signed_range_read_as_unit": np.clip(2 * x - 255, 0, 255),  # [-1, 1] output taken as [0, 1]
        "unit_range_read_as_signed": (x + 255) / 2,  # [0, 1] output taken as [-1, 1]
    }[wrong]
    assert mse(recon, mistaken) > 2 * mse(recon, images)


def test_card_reports_the_shipped_weights(heldout):
    """CARD.md's per-photo PSNR is what these files give today (so the card cannot drift from the weights)."""
    names, images, recon = heldout
    card = (builtin_dir("tiny") / "CARD.md").read_text()
    values = dict(zip(names, psnr(images, recon), strict=True))
    for name, value in values.items():
        row = re.search(rf"\| `{re.escape(name)}` \| ([0-9.]+) \|", card)
        assert row, f"CARD.md has no PSNR row for {name}"
        assert float(row.group(1)) == pytest.approx(value, abs=0.01)
    for heading in ("## Data", "## Training", "## Codebook usage", "## Reproduce"):
        assert heading in card
