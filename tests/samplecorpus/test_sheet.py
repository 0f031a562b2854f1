import pytest
from click.testing import CliRunner

from lvm_data.cli import main
from lvm_data.media.samples import photos
from lvm_data.samplecorpus import sheet as sheet_module
from lvm_data.samplecorpus.sheet import source_rows, source_sheet, write_source_sheet
from lvm_data.shards.preview import LABEL_HEIGHT, PreviewError, first_sentences
from lvm_data.testing import images_source, job_text, write_corpus, write_tiny_checkpoint
from lvm_data.tokenizer import load


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A job output with sources `single` (3 one-image sentences), `pairs` (a 4-image and a 2-image
    sentence) and `broken` (one empty file: no sentence)."""
    root = tmp_path_factory.mktemp("sheet")
    tiny = write_tiny_checkpoint(root / "tiny")
    write_corpus(root / "in", photos("heldout"), broken=False)
    (root / "bad").mkdir()
    (root / "bad" / "empty.png").write_bytes(b"")
    pairs = {"name": "derived", "task": "colorization", "pairs": 2, "min_pairs": 1}
    sources = [
        images_source("single", root / "in"),
        images_source("pairs", root / "in", pairs),
        images_source("broken", root / "bad"),
    ]
    (root / "job.yaml").write_text(job_text("sheet", root / "out", tiny, sources))
    result = CliRunner().invoke(main, ["run", str(root / "job.yaml"), "--no-progress"])
    assert result.exit_code == 0, result.output
    return root


def test_one_row_per_source_in_the_order_given(corpus):
    sheet, empty = source_sheet(str(corpus / "out"), ["pairs", "broken", "single"], cell=16)
    rows = [(r.source, r.template, r.n_images) for r in sheet.rows]
    assert rows == [("pairs", "derived", 4), ("single", "single", 1)]
    assert empty == ["broken"]
    assert sheet.pixels.shape == (2 * (LABEL_HEIGHT + 16), 4 * 16, 3)


def test_a_source_shows_its_longest_sentence_whichever_comes_first(corpus, monkeypatch):
    out = str(corpus / "out")
    found, fingerprint = first_sentences(out, 8, "pairs")
    assert sorted(r["n_images"] for r in found) == [2, 4]
    tokenizer = load(str(corpus / "tiny"), device="cpu")
    for order in (sorted(found, key=lambda r: r["n_images"]), sorted(found, key=lambda r: -r["n_images"])):
        monkeypatch.setattr(sheet_module, "first_sentences", lambda *_, rows=order: (rows, fingerprint))
        rows, _ = source_rows(out, ["pairs"], tokenizer)
        assert [r.n_images for r in rows] == [4]


def test_written_sheet_and_tokenizer_checks(corpus, tmp_path):
    sheet, _ = write_source_sheet(str(corpus / "out"), str(tmp_path / "p.png"), ["single"], cell=8)
    assert (tmp_path / "p.png").read_bytes() == sheet.png()
    other = load(str(write_tiny_checkpoint(tmp_path / "other", seed=1)), device="cpu")
    with pytest.raises(PreviewError, match="fingerprint"):
        source_sheet(str(corpus / "out"), ["single"], tokenizer=other)
    with pytest.raises(PreviewError, match="no source has sentences"):
        source_sheet(str(corpus / "out"), ["broken"])
