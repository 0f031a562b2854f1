"""The `lvm-data audit` command: exit codes, --json, --report, --target."""

import json

from click.testing import CliRunner

from lvm_data.cli import main

from .handmade import standard
from .test_run import plant_orphan


def test_clean_output_exits_0_and_prints_the_table(tmp_path):
    standard(str(tmp_path)).write()
    result = CliRunner().invoke(main, ["audit", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Tokens per source x template x task" in result.output and "OK: no violations" in result.output


def test_violations_exit_1_and_json_stays_json_with_a_report(tmp_path):
    c = standard(str(tmp_path / "out"))
    plant_orphan(c)
    result = CliRunner().invoke(
        main,
        ["audit", str(tmp_path / "out"), "--json", "--deep", "--target", "uvdv1", "--report", str(tmp_path / "report")],
    )
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert list(document["violations"]["kinds"]) == ["orphan_sentence"]
    assert (tmp_path / "report" / "report.html").exists() and "report written" in result.stderr


def test_unusable_path_or_target_exits_2_with_a_message(tmp_path):
    result = CliRunner().invoke(main, ["audit", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "does not exist" in result.output
    standard(str(tmp_path / "out")).write()
    result = CliRunner().invoke(main, ["audit", str(tmp_path / "out"), "--target", str(tmp_path / "mix.yaml")])
    assert result.exit_code == 2 and "cannot read the target mixture" in result.output


def test_help_says_what_the_exit_status_means():
    result = CliRunner().invoke(main, ["audit", "--help"])
    assert "1 when violations are found" in " ".join(result.output.split())
