"""`lvm-data preview`: one row per sentence, each image the decoded tokens of the tokenized input."""

import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from lvm_data.cli import main
from lvm_data.items import ItemRef, Part
from lvm_data.job.config import parse_job_text
from lvm_data.media.contract import DecodeSettings
from lvm_data.media.decode import decode_item
from lvm_data.media.parts import AnnotationPart, options_tuple
from lvm_data.media.samples import photos, stereo_pair
from lvm_data.shards.preview import BACKGROUND, LABEL_HEIGHT, PreviewError, preview
from lvm_data.shards.reader import read_sentences
from lvm_data.testing import images_source, job_text, write_tiny_checkpoint
from lvm_data.tokenizer import load
from pipelines.tokenize import run_job


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    root = tmp_path_factory.mktemp("preview")
    tiny = write_tiny_checkpoint(root / "tiny")
    sources = [
        images_source("photos", [str(p) for p in photos("heldout")]),
        images_source(
            "gray",
            [str(p) for p in photos("train")[:4]],
            template={"name": "derived", "task": "colorization", "pairs": 2},
        ),
    ]
    text = job_text("preview", root / "out", tiny, sources, shard_size=8)
    run_job(parse_job_text(text), text, [])
    return root / "out", load(str(tiny), device="cpu")


def test_one_row_per_sentence_with_the_decoded_inputs(output):
    out, tokenizer = output
    sheet = preview(str(out), 4, tokenizer=tokenizer)
    size = tokenizer.image_size
    assert len(sheet.rows) == 4 and sheet.pixels.shape == (4 * (LABEL_HEIGHT + size), 4 * size, 3)
    table = read_sentences(str(out)).to_pylist()[:4]
    for r, (row, sentence) in enumerate(zip(sheet.rows, table, strict=True)):
        assert (row.id, row.source, row.template, row.task) == (
            sentence["id"],
            sentence["source"],
            sentence["template"],
            sentence["task"],
        )
        codes = np.asarray(sentence["tokens"]).reshape(sentence["n_images"], -1)
        for c, frame in enumerate(sentence["frames"]):
            top, left, bottom, right = sheet.cell_box(r, c)
            cell = sheet.pixels[top:bottom, left:right]
            if frame["role"] == "image":  # what the input looks like through this tokenizer
                pixels = (
                    decode_item(ItemRef("s", "k", "u", {"image": Part(frame["uri"])}), DecodeSettings(size))
                    .frames[0]
                    .pixels
                )
                direct_codes = tokenizer.encode(np.array(pixels[None]))
                assert np.array_equal(direct_codes[0], codes[c])
                direct = tokenizer.decode(direct_codes)[0]
                assert np.abs(cell.astype(int) - direct).max() <= 1  # same codes; batched decoding rounds +-1
        band = sheet.pixels[r * (LABEL_HEIGHT + size) : r * (LABEL_HEIGHT + size) + LABEL_HEIGHT]
        assert (band != np.array(BACKGROUND, np.uint8)).any()  # the label is written
    empty = sheet.pixels[LABEL_HEIGHT : LABEL_HEIGHT + size, 3 * size :]  # a 1-image sentence leaves the row empty
    if sheet.rows[0].n_images == 1:
        assert (empty == np.array(BACKGROUND, np.uint8)).all()


def test_source_filter_and_a_wrong_tokenizer(output, tmp_path):
    out, tokenizer = output
    sheet = preview(str(out), 8, tokenizer=tokenizer, source="gray")
    assert {r.template for r in sheet.rows} == {"derived"} and all(r.n_images == 4 for r in sheet.rows)
    other = load(str(write_tiny_checkpoint(tmp_path / "other", seed=1)), device="cpu")
    with pytest.raises(PreviewError, match="fingerprint"):
        preview(str(out), 2, tokenizer=other)
    with pytest.raises(PreviewError, match="no sentence files"):
        preview(str(tmp_path), 2, tokenizer=tokenizer)


def test_preview_command_uses_the_manifest_tokenizer(output, tmp_path):
    out, tokenizer = output
    result = CliRunner().invoke(
        main, ["preview", str(out), "--n", "3", "--out", str(tmp_path / "sheet.png"), "--cell", "48"]
    )
    assert result.exit_code == 0, result.output
    assert "3 sentence(s)" in result.output
    assert Image.open(tmp_path / "sheet.png").size[1] == 3 * (LABEL_HEIGHT + 48)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64))[0, 1])


@pytest.mark.slow
def test_decoded_frames_resemble_the_inputs_with_the_builtin_tokenizer(tmp_path):
    """With the trained builtin tokenizer each image on the sheet looks like its own input (a photo and its
    rendered depth map: same scene, different picture), far more than like the other input."""
    left, _, disparity = stereo_pair()
    (tmp_path / "rgb").mkdir()
    (tmp_path / "depth").mkdir()
    shutil.copy(left, tmp_path / "rgb" / "moto.png")
    shutil.copy(disparity, tmp_path / "depth" / "moto.npz")
    sources = [
        {
            "name": "stereo",
            "input": {
                "format": "paired",
                "images": str(tmp_path / "rgb"),
                "annotations": {"depth": {"paths": str(tmp_path / "depth"), "encoding": "disparity"}},
            },
            "template": {"name": "pairs", "min_pairs": 1},
        }
    ]
    text = job_text("resemble", tmp_path / "out", "builtin:tiny", sources)
    run_job(parse_job_text(text), text, [])
    sheet = preview(str(tmp_path / "out"), 1)
    assert len(sheet.rows) == 1 and sheet.rows[0].n_images == 2
    settings = DecodeSettings(256)
    inputs = decode_item(
        ItemRef(
            "s",
            "k",
            "u",
            {
                "image": Part(str(left)),
                "depth": AnnotationPart(str(disparity), options=options_tuple({"encoding": "disparity"})),
            },
        ),
        settings,
    ).frames
    cells = [
        sheet.pixels[top:bottom, left_:right]
        for top, left_, bottom, right in (sheet.cell_box(0, 0), sheet.cell_box(0, 1))
    ]
    for own, other, cell in ((inputs[0], inputs[1], cells[0]), (inputs[1], inputs[0], cells[1])):
        assert correlation(cell, own.pixels) > 0.5
        assert correlation(cell, own.pixels) > correlation(cell, other.pixels) + 0.3
    assert psnr(cells[0], inputs[0].pixels) > 14.0  # the photo (builtin:tiny's card: 15.6 dB on held-out photos)
