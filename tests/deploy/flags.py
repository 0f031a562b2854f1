"""Helpers for the deploy tests: run a deploy script in its DRY_RUN mode, and check flags against Beam."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def dry_run(script: str, *args: str, **env: str) -> list[str]:
    """The command `deploy/<script>` would run (argv), with `env` added to a clean environment."""
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    result = subprocess.run(
        ["bash", str(DEPLOY / script), *args],
        env={**clean, **env, "DRY_RUN": "1"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return shlex.split(result.stdout)


def failing_run(script: str, *args: str, **env: str) -> str:
    """stderr of a deploy script that must refuse to run (exit status 2)."""
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    result = subprocess.run(
        ["bash", str(DEPLOY / script), *args],
        env={**clean, **env, "DRY_RUN": "1"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    return result.stderr


def unknown_to_beam(flags: list[str]) -> set[str]:
    """Flags no Beam options class defines (Beam would drop them with a warning)."""
    options = PipelineOptions(flags)
    return set(options.get_all_options(retain_unknown_options=True)) - set(options.get_all_options())


def beam_options(flags: list[str]) -> dict:
    return PipelineOptions(flags).get_all_options()


def pinned(package: str) -> str:
    """The version constraints.txt pins `package` to."""
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if re.sub(r"[-_.]+", "-", name.strip().lower()) == package:
            return version.strip()
    raise AssertionError(f"constraints.txt does not pin {package}")
