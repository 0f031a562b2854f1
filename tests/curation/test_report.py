import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from lvm_data.cli import main
from lvm_data.curation.planted import write_planted
from lvm_data.curation.removed_samples import THUMBNAIL
from lvm_data.curation.report import LABEL, ReportError, build_report
from lvm_data.job.config import parse_job_text
from lvm_data.job.loop import LocalExecutor
from lvm_data.job.runs import finish_run, open_run
from lvm_data.media.samples import photos
from lvm_data.testing import images_source, job_text, write_tiny_checkpoint
from lvm_data.tokenizer import load


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    """A finished job output (plain in-process loop) of photos with planted junk and copies."""
    root = tmp_path_factory.mktemp("report")
    tiny = str(write_tiny_checkpoint(root / "tiny"))
    planted = write_planted(root / "corpus", photos("heldout")[:2], copies=("exact", "jpeg"))
    filters = ["bounds", "low_variance", {"blocklist": {"patterns": ["*/zz-banned*"]}}, "duplicates", "near_duplicates"]
    sources = [
        {**images_source("photos", planted.photos), "filters": filters},
        {**images_source("reposts", planted.reposts), "filters": filters},
    ]
    tokenizer = load(tiny, device="cpu")
    run = open_run(parse_job_text(job_text("r", root / "out", tiny, sources, shard_size=3)), tokenizer)
    LocalExecutor(run, tokenizer).execute()
    finish_run(run, "local loop")
    return str(root / "out")


def test_report_counts_and_samples_every_reason_but_blocklisted(output):
    report = build_report(output, per_reason=2)
    assert report.sources["photos"]["removed"] == {"bad_aspect": 1, "blocklisted": 1, "low_variance": 2, "too_small": 1}
    assert report.sources["reposts"]["removed"] == {"duplicate": 2, "near_duplicate": 2}
    assert report.index["candidates"] == 6
    assert sorted(report.samples) == ["bad_aspect", "duplicate", "low_variance", "near_duplicate", "too_small"]
    assert all(len(rows) <= 2 for rows in report.samples.values())
    assert report.sheet.shape == (5 * (LABEL + THUMBNAIL + 12), 4 * THUMBNAIL, 3)
    again = build_report(output, per_reason=2)
    assert json.dumps(again.to_dict(), sort_keys=True) == json.dumps(report.to_dict(), sort_keys=True)


def test_curation_report_command_writes_the_files(output, tmp_path):
    result = CliRunner().invoke(main, ["curation-report", output, "--dest", str(tmp_path), "--per-reason", "1"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["contact_sheet.png", "report.json", "report.md"]
    markdown = (tmp_path / "report.md").read_text()
    assert "| photos | 7 | 2 | bad_aspect 1, blocklisted 1, low_variance 2, too_small 1 |" in markdown
    assert "zz-banned" not in markdown and "Blocklisted items are counted, never shown." in markdown
    sheet = np.asarray(Image.open(tmp_path / "contact_sheet.png"))
    assert sheet.shape[0] == 5 * (LABEL + THUMBNAIL + 12) and sheet.std() > 10
    shown = json.loads((tmp_path / "report.json").read_text())["samples"]
    assert {reason: len(rows) for reason, rows in shown.items()} == dict.fromkeys(
        ["bad_aspect", "duplicate", "low_variance", "near_duplicate", "too_small"], 1
    )


def test_report_needs_a_finished_output(tmp_path):
    with pytest.raises(ReportError, match="no manifest.json; run the job to the end"):
        build_report(str(tmp_path))
    result = CliRunner().invoke(main, ["curation-report", str(tmp_path)])
    assert result.exit_code == 1 and "no manifest.json" in result.output


def test_curation_hash_prints_blocklist_entries():
    path = photos("heldout")[0]
    result = CliRunner().invoke(main, ["curation-hash", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"# {path}" and [line.split(":")[0] for line in lines[1:]] == ["sha256", "md5", "phash", "dhash"]
    broken = CliRunner().invoke(main, ["curation-hash", "/no/such/image.png"])
    assert broken.exit_code == 1 and "/no/such/image.png" in broken.output
