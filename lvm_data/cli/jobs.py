"""The `run` and `retry-failed` commands' work: build the config, call the pipeline, print for people.

Click parsing stays in lvm_data/cli/commands.py; this module is the command layer's glue (it may print).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging

import click

from lvm_data import storage
from lvm_data.cli.display import Display
from lvm_data.job.config import JobConfigError, load_job, read_job_file, with_overrides
from lvm_data.job.faults import describe, fault_in_text, find_fault
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


class QuietFaults(logging.Filter):
    """Holds back Beam's error log records of a storage fault while a job runs: it ends with one line instead
    (`_storage_fault`). Other errors are logged as Beam logs them."""

    LOGGERS = ("apache_beam.runners.common", "apache_beam.runners.portability.local_job_service")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        if record.exc_info and record.exc_info[1] is not None and find_fault(record.exc_info[1]) is not None:
            return False
        return fault_in_text(record.getMessage()) is None

    def __enter__(self) -> QuietFaults:
        for name in self.LOGGERS:
            logging.getLogger(name).addFilter(self)
        return self

    def __exit__(self, *exc) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeFilter(self)


class _WarningLines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _err(f"warning: {record.getMessage()}")


@contextlib.contextmanager
def show_warnings():
    """The library's warnings (lvm_data loggers, e.g. a damaged unit marker) as `warning: ...` lines on stderr."""
    handler, logger = _WarningLines(logging.WARNING), logging.getLogger("lvm_data")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _quiet_beam_workers() -> None:
    """Worker-process warnings that the embedded runner forwards (e.g. "No semi_persistent_directory")."""
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)


@show_warnings()
def run_command(
    job_file: str,
    beam_args: list[str],
    *,
    limit: int | None = None,
    output: str | None = None,
    dry_run: bool = False,
    progress: bool | None = None,
) -> int:
    """`lvm-data run`: exit status 0 when the job finished (failed items are ledger rows, not errors)."""
    from pipelines.tokenize import plan_only, run_job

    _quiet_beam_workers()
    job = None
    try:
        job, text = with_overrides(read_job_file(job_file), job_file, output=output, limit=limit)
        if dry_run:
            for line in plan_lines(plan_only(job)):
                click.echo(line)
            return 0
        with QuietFaults():
            manifest = run_job(job, text, beam_args, watch=watch(progress))
    except USER_ERRORS as err:
        _err(f"error: {err}")
        return 2
    except Exception as err:
        if job is None:
            raise
        return _storage_fault(err, job.output)
    _print_done(manifest, job.output)
    return 0


@show_warnings()
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
        with QuietFaults():
            manifest = run_job(job, None, beam_args, retry=True, watch=watch(None))
    except USER_ERRORS as err:
        _err(f"error: {err}")
        return 2
    except Exception as err:
        return _storage_fault(err, out)
    _print_done(manifest, out)
    return 0


def _storage_fault(err: Exception, out: str) -> int:
    """A full disk, a folder this user may not write, an object store that keeps failing: one line, status 2.
    Anything else is a bug and keeps its traceback."""
    fault = find_fault(err)
    if fault is None:
        raise err
    _err(f"error: {describe(fault, out)}")
    return 2


def _print_done(manifest: dict, out: str) -> None:
    click.echo(format_totals(manifest))
    t = manifest["totals"]
    click.echo(
        f"{t['inputs']} items: {t['ok']} ok, {t['filtered']} filtered, {t['failed']} failed -> "
        f"{t['sentences']} sentences, {t['tokens']} tokens in {out}"
    )


def mix_command(mix_file: str, beam_args: list[str]) -> int:
    """`lvm-data mix`: exit 0 when the mix is written, 2 when the mix file or its inputs cannot be used."""
    from lvm_data.mix.config import MixConfigError, read_mix_file
    from lvm_data.mix.plan import MixPlanError
    from pipelines.mix import run_mix

    _quiet_beam_workers()
    try:
        config = read_mix_file(mix_file)
        manifest = run_mix(config, storage.read_bytes(mix_file).decode(), beam_args, watch=_mix_progress(config))
    except (MixConfigError, MixPlanError, ValueError) as err:
        _err(f"error: {err}")
        return 2
    click.echo(format_mix(manifest))
    return 0


def _mix_progress(config):
    from lvm_data.mix.shards import ShardProgress

    @contextlib.contextmanager
    def watch(plan):
        with (
            Display() as display,
            ShardProgress(config.output, plan.train_shards + plan.validation_shards, config.name, display),
        ):
            yield

    return watch


def format_mix(manifest: dict) -> str:
    lines = [
        f"{'part':<20} {'asked':>8} {'achieved':>9} {'epochs':>8} {'sentences':>10} {'tokens':>12} "
        f"{'validation':>10} {'removed':>8}"
    ]
    for name, p in manifest["parts"].items():
        lines.append(
            f"{name:<20} {p['asked_share']:>8.4f} {p['achieved_share']:>9.4f} {p['epochs']:>8.3f} "
            f"{p['mix_sentences']:>10} {p['mix_tokens']:>12} {p['validation_sentences']:>10} "
            f"{sum(p['removed'].values()):>8}"
        )
    train = [s for s in manifest["shards"] if s["split"] == "train"]
    lines.append(
        f"{len(train)} train shards, {len(manifest['shards']) - len(train)} validation shards; worst share "
        f"error {manifest['worst_global_share_error']:.4f} overall, {manifest['worst_shard_share_error']:.4f} "
        f"in a shard; {manifest['bytes_per_token']} bytes/token in {manifest['config']['output']}"
    )
    return "\n".join(lines)


def export_mix_command(config) -> int:
    """`lvm-data export-mix`: exit 0 when the export is written, 2 when the mix, DEST or an option cannot be used.
    config: an lvm_data.mix.export.ExportConfig."""
    from lvm_data.mix.export import ExportError, export_mix

    try:
        record = export_mix(config)
    except ExportError as err:
        _err(f"error: {err}")
        return 2
    except Exception as err:
        return _storage_fault(err, config.dest)
    click.echo(format_export(record))
    return 0


def format_export(record: dict) -> str:
    ids = ", ".join(f"{name} {record[name]}" for name in ("bos", "eos", "pad") if record[name] is not None)
    lines = [f"{record['format']} export of mix {record['mix']} in {record['dest']} ({ids or 'codes only'})"]
    for split, s in record["splits"].items():
        rows = (
            f" in {s['rows']} rows of {s['L']} ({s['pad_tokens']} pad)"
            if "rows" in s
            else f" in {len(s['files'])} file(s)"
        )
        lines.append(f"{split}: {s['sentences']} sentences, {s['codes']} codes, {s['tokens']} tokens{rows}")
    return "\n".join(lines)
