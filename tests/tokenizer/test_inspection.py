import json
import math

import numpy as np
from click.testing import CliRunner

from lvm_data.cli import main
from lvm_data.media.samples import photos
from lvm_data.tokenizer import load
from lvm_data.tokenizer.inspection import format_inspection, inspect_tokenizer, load_photos, psnr

from .layouts import FIXTURE_MODEL, MICRO, write_muse


def test_psnr_of_known_errors():
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = a.copy()
    b[0] = 10  # MSE 100 -> 10 log10(65025 / 100)
    values = psnr(a, b)
    assert math.isclose(values[0], 10 * math.log10(255**2 / 100))
    assert math.isinf(values[1])


def test_load_photos_squashes_the_held_out_photos():
    paths = photos("heldout")
    images = load_photos(paths, 32)
    assert images.shape == (len(paths), 32, 32, 3) and images.dtype == np.uint8
    assert [p.name for p in paths] == ["chelsea.png", "coffee.png", "grace_hopper.jpg"]


def test_inspection_of_the_fixture():
    tok = load(str(FIXTURE_MODEL), device="cpu")
    report = inspect_tokenizer(tok, photos("heldout")[:1])
    assert (report.format, report.num_parameters, report.codebook_size) == ("open-muse", 9_822_627, 8192)
    assert (report.tokens_per_image, report.image_size, report.input_range) == (256, 256, (0.0, 1.0))
    assert report.fingerprint == tok.fingerprint and report.config["hidden_channels"] == 32
    images = load_photos(photos("heldout")[:1], 256)
    expected = psnr(images, tok.decode(tok.encode(images)))[0]
    assert report.psnr == {"chelsea.png": expected} and 3 < expected < 60
    text = format_inspection(report)
    assert "format:           open-muse" in text and "parameters:       9,822,627" in text
    assert f"round-trip PSNR:  {expected:.2f} dB  chelsea.png" in text


def test_cli_inspect_prints_json(tmp_path, micro_weights):
    folder = write_muse(tmp_path / "ckpt", MICRO, micro_weights)
    result = CliRunner().invoke(main, ["tokenizer", "inspect", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["format"] == "open-muse" and report["codebook_size"] == 16
    assert sorted(report["psnr"]) == ["chelsea.png", "coffee.png", "grace_hopper.jpg"]
    assert math.isclose(report["mean_psnr"], np.mean(list(report["psnr"].values())))


def test_cli_inspect_reports_a_bad_checkpoint_in_one_line(tmp_path):
    (tmp_path / "config.json").write_text('{"hidden_channels": 32}')
    result = CliRunner().invoke(main, ["tokenizer", "inspect", str(tmp_path)])
    assert result.exit_code == 1
    assert "Error: " in result.output and "no weights found" in result.output and "Traceback" not in result.output
