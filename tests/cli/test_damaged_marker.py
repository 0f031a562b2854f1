"""A unit marker cut short from outside (markers are written atomically, so only outside damage tears one): the
next `lvm-data run` warns naming the file, redoes the unit and writes a whole marker again; nothing crashes."""

import json

from click.testing import CliRunner

from lvm_data.cli import main
from lvm_data.media.samples import photos
from lvm_data.shards.reader import read_ledger, read_sentences
from lvm_data.testing import images_source, job_text, write_corpus, write_tiny_checkpoint


def test_a_torn_marker_is_redone_with_a_warning(tmp_path):
    tiny = write_tiny_checkpoint(tmp_path / "tiny")
    write_corpus(tmp_path / "in", photos("heldout")[:4], broken=False)
    job = tmp_path / "job.yaml"
    job.write_text(job_text("j", tmp_path / "out", tiny, [images_source("photos", tmp_path / "in")], shard_size=2))
    first = CliRunner().invoke(main, ["run", str(job), "--no-progress"])
    assert first.exit_code == 0, first.output
    out = tmp_path / "out"
    sentences, ledger = read_sentences(str(out)), read_ledger(str(out))
    totals = json.loads((out / "manifest.json").read_text())["totals"]
    marker = out / "units" / "source=photos" / "000000.json"
    whole = json.loads(marker.read_text())
    marker.write_bytes(marker.read_bytes()[:40])

    plan = CliRunner().invoke(main, ["run", str(job), "--dry-run"])
    assert plan.exit_code == 0, plan.output
    assert f"warning: unit marker {marker} is damaged" in plan.output and "1 of 2 write units committed" in plan.output
    again = CliRunner().invoke(main, ["run", str(job), "--no-progress"])
    assert again.exit_code == 0, again.output
    assert f"warning: unit marker {marker} is damaged" in again.output
    assert "Traceback" not in again.output
    redone = json.loads(marker.read_text())  # whole again
    assert redone["committed"] >= whole["committed"] and redone["counts"] == whole["counts"]
    assert read_sentences(str(out)).equals(sentences) and read_ledger(str(out)).equals(ledger)
    assert json.loads((out / "manifest.json").read_text())["totals"] == totals
    assert again.output.count("warning:") == 1
