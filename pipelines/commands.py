"""The `run` and `retry-failed` commands' work: build the config, call the pipeline, print for people.

Click parsing stays in lvm_data/cli.py; this module is the CLI layer's glue (it may print).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging

import click

from lvm_data import storage
from lvm_data.display import Display
from lvm_data.job.config import JobConfigError, load_job, read_job_file, with_overrides
from lvm_data.job.plan import ResumeError
from lvm_data.job.progress import Progress, plan_lines
from lvm_data.shards import layout
from lvm_data.shards.manifest import format_totals
from lvm_data.sources.listing import SourceError
from lvm_data.tokenizer import CheckpointError

USER_ERRORS = (JobConfigError, ResumeError, SourceError, CheckpointError)


def _err(text: str) -> None:
    click.echo(text, err=True)


@contextlib.contextmanager
def _progress(run, display: Display):
    with display, Progress(run, display):
        yield


def watch(enabled: bool | None):
    """The run's progress display: a live bar on a terminal, a line every 30 s in a log; off with False."""
    if enabled is False:
        return None
    return lambda run: _progress(run, Display())


def _quiet_beam_workers() -> None:
    """Worker-process warnings that the embedded runner forwards (e.g. "No semi_persistent_directory")."""
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)


def run_command(job_file: str, beam_args: list[str], *, limit: int | None = None, output: str | None = None,
                dry_run: bool = False, progress: bool | None = None) -> int:
    """`lvm-data run`: exit status 0 when the job finished (failed items are ledger rows, not errors)."""
    from pipelines.tokenize import plan_only, run_job

    _quiet_beam_workers()
    try:
        job, text = with_overrides(read_job_file(job_file), job_file, output=output, limit=limit)
        if dry_run:
            for line in plan_lines(plan_only(job)):
                click.echo(line)
            return 0
        manifest = run_job(job, text, beam_args, watch=watch(progress))
    except USER_ERRORS as err:
        _err(f"error: {err}")
        return 2
    _print_done(manifest, job.output)
    return 0


def retry_command(out: str, beam_args: list[str]) -> int:
    """`lvm-data retry-failed OUT`: rerun the failed items of a finished job output."""
    from pipelines.tokenize import run_job

    _quiet_beam_workers()
    job_file = layout.join(out, layout.JOB_FILE)
    try:
        if not storage.exists(job_file):
            _err(f"error: {job_file} not found; is {out} the output folder of an `lvm-data run`?")
            return 2
        job = dataclasses.replace(load_job(job_file), output=out)  # the folder may have moved since the run
        manifest = run_job(job, None, beam_args, retry=True, watch=watch(None))
    except USER_ERRORS as err:
        _err(f"error: {err}")
        return 2
    _print_done(manifest, out)
    return 0


def _print_done(manifest: dict, out: str) -> None:
    click.echo(format_totals(manifest))
    t = manifest["totals"]
    click.echo(f"{t['inputs']} items: {t['ok']} ok, {t['filtered']} filtered, {t['failed']} failed -> "
               f"{t['sentences']} sentences, {t['tokens']} tokens in {out}")
