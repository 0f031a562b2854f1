import json
import re

import pytest
from click.testing import CliRunner

from lvm_data.cli import main
from lvm_data.media.samples import photos
from lvm_data.testing import images_source, job_text, write_corpus, write_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("tiny")))


@pytest.fixture
def job(tmp_path, tiny):
    write_corpus(tmp_path / "in", photos("heldout"), broken=False)
    (tmp_path / "in" / "empty.png").write_bytes(b"")
    path = tmp_path / "job.yaml"
    path.write_text(job_text("cli", tmp_path / "out", tiny, [images_source("photos", tmp_path / "in")], shard_size=3))
    return path


def test_dry_run_lists_units_and_estimates_without_writing(job, tmp_path):
    result = CliRunner().invoke(main, ["run", str(job), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "source photos (images, template single): 2 units, 4 items" in result.output
    assert "unit 000000: 3 items" in result.output and "unit 000001: 1 items" in result.output
    assert "4 images -> 256 tokens" in result.output
    assert not (tmp_path / "out").exists()


def test_run_with_progress_limit_and_beam_flags(job, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(job),
            "--progress",
            "--limit",
            "3",
            "--direct_num_workers",
            "1",
            "--output",
            str(tmp_path / "limited"),
        ],
    )
    assert result.exit_code == 0, result.output
    (last,) = [line for line in result.output.splitlines() if line.startswith("run cli: ")]  # stderr, mixed in here
    assert re.fullmatch(r"run cli: items 3/3 \(100%\)  [0-9.]+ items/s  images 2  units 1/1  took \d+s", last), last
    assert "3 items: 2 ok, 0 filtered, 1 failed -> 2 sentences, 128 tokens" in result.output
    manifest = json.loads((tmp_path / "limited" / "manifest.json").read_text())
    assert manifest["job"]["config"]["limit"] == 3 and manifest["runner"] == "FnApiRunner(in_memory)"
    assert (manifest["tokenizer"]["device"], manifest["tokenizer"]["requested_device"]) == ("cpu", "auto")
    assert "limit=3" in (tmp_path / "limited" / "job.yaml").read_text().splitlines()[0]
    assert (tmp_path / "limited" / "job.yaml").exists()


def test_invalid_job_file_exits_2_naming_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\noutput: o\nresize: stretch\nsources: []\n")
    result = CliRunner().invoke(main, ["run", str(bad)])
    assert result.exit_code == 2
    assert "resize: 'stretch' is not allowed; use one of squash, center_crop, pad" in result.output
    assert "sources: [] should be non-empty" in result.output


def test_missing_input_folder_exits_2_naming_the_path(tmp_path, tiny):
    path = tmp_path / "job.yaml"
    path.write_text(job_text("j", tmp_path / "out", tiny, [images_source("photos", tmp_path / "missing")]))
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 2 and "missing' matches no files" in result.output


def test_retry_failed_needs_a_job_output(tmp_path):
    result = CliRunner().invoke(main, ["retry-failed", str(tmp_path)])
    assert result.exit_code == 2 and "job.yaml not found; is" in result.output


def test_retry_failed_leaves_units_without_failures_alone(job, tmp_path):
    assert CliRunner().invoke(main, ["run", str(job)]).exit_code == 0
    out = tmp_path / "out"
    clean = out / "units" / "source=photos" / "000001.json"  # grace_hopper.jpg only
    before = clean.read_text()
    result = CliRunner().invoke(main, ["retry-failed", str(out)])
    assert result.exit_code == 0, result.output
    assert clean.read_text() == before
    assert "4 items: 3 ok, 0 filtered, 1 failed" in result.output and "empty_file=1" in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--dryrun"],
            "no such option: --dryrun (neither an option of this command nor a Beam flag); did you mean --dry-run?",
        ),
        (["--direct_num_worker=2"], "did you mean --direct_num_workers?"),
        (["--no-progres"], "did you mean --no-progress?"),
        (["--zzzz"], "no such option: --zzzz (neither an option of this command nor a Beam flag); see --help"),
        (["stray"], "unexpected argument 'stray'"),
    ],
)
def test_unknown_flags_are_refused_with_the_closest_match_before_any_work(job, tmp_path, args, expected):
    result = CliRunner().invoke(main, ["run", str(job), *args])
    assert result.exit_code == 2 and expected in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


def test_beam_flags_with_values_pass_through(job, tmp_path):
    result = CliRunner().invoke(
        main, ["run", str(job), "--direct_num_workers", "1", "--direct_running_mode=in_memory", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "4 items: 3 ok, 0 filtered, 1 failed" in result.output
