"""`lvm-data sample`: build the bundled sample corpus and show it, as a new user's first command.

Steps: assemble the inputs (lvm_data.samplecorpus.inputs) under OUT/media, write the job file
OUT/job.yaml, run it with `run_command` (exactly what `lvm-data run OUT/job.yaml` does: embedded
runner, resume), audit OUT/corpus (lvm_data.audit), write OUT/preview.png (one sentence per source),
then say where everything is and what to try next. Rerunning on the same OUT resumes: existing inputs
are kept and committed units are skipped, so nothing is duplicated. CLI glue: it prints.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click

from lvm_data import storage
from lvm_data.cli.display import Display
from lvm_data.cli.jobs import run_command
from lvm_data.job.config import parse_job_text
from lvm_data.samplecorpus.inputs import assemble
from lvm_data.samplecorpus.job import CORPUS, MEDIA, sample_job
from lvm_data.shards import layout
from lvm_data.shards.manifest import read_manifest
from lvm_data.shards.preview import PreviewError

PREVIEW = "preview.png"


def _err(text: str) -> None:
    click.echo(text, err=True)


def sample_command(
    out: str, tokenizer: str, beam_args: list[str], progress: bool | None = None, clock=time.monotonic
) -> int:
    """Exit status: 0 done and the audit is clean, 1 the audit found violations or a source wrote no
    sentence, 2 the sample could not be built or run (the message says why and what to do). The preview
    is redrawn only when this run committed something (or it is missing): it is the slow step on a CPU."""
    if "://" in out:
        _err(f"error: --out {out}: the sample is built in a local folder; give a local path")
        return 2
    root = Path(out).absolute()
    job_file, text = root / layout.JOB_FILE, sample_job(root, tokenizer)
    if job_file.is_file() and job_file.read_text() != text:
        _err(
            f"error: {job_file} holds a different sample job (another --tokenizer, or an older lvm-data); "
            f"delete {out} or pass another --out"
        )
        return 2
    seconds: dict[str, float] = {}
    start = clock()
    if not _inputs(root / MEDIA):
        return 2
    if not job_file.is_file():
        storage.write_bytes(str(job_file), text.encode())
    seconds["inputs"], start = clock() - start, clock()
    click.echo(f"[2/4] pipeline: lvm-data run {job_file}")
    corpus, preview = str(root / CORPUS), root / PREVIEW
    committed = _commits(corpus)
    status = run_command(str(job_file), beam_args, progress=progress)
    if status != 0:
        return status
    seconds["pipeline"], start = clock() - start, clock()
    audited, complete = _audit(corpus), _every_source_wrote(corpus)
    ok = audited and complete
    seconds["audit"], start = clock() - start, clock()
    if preview.is_file() and _commits(corpus) == committed:
        click.echo(f"[4/4] preview: {preview} is up to date (this run committed nothing new)")
    else:
        ok = _preview(corpus, str(preview), [s.name for s in parse_job_text(text, str(job_file)).sources]) and ok
    seconds["preview"] = clock() - start
    _print_next(out, seconds)
    return 0 if ok else 1


def _commits(corpus: str) -> list[tuple[str, bytes]]:
    """Every unit marker of the corpus with its content: what changes when a run commits anything."""
    return [(uri, storage.read_bytes(uri)) for uri in storage.list_files(layout.join(corpus, "units"))]


def _inputs(media: Path) -> bool:
    click.echo(f"[1/4] inputs: copying packaged media and deriving annotations into {media}")
    try:
        assembled = assemble(media)
    except FileNotFoundError as err:  # a package that ships the media is missing: the message names it
        _err(f"error: {err}")
        return False
    click.echo(
        "      "
        + ", ".join(f"{n} {group}" for group, n in assembled.groups.items())
        + f" ({assembled.written} written, {assembled.kept} already there)"
    )
    return True


def _audit(corpus: str) -> bool:
    from lvm_data.audit import AuditConfig, render_text, run_audit

    click.echo(f"[3/4] audit: lvm-data audit {corpus} --deep")
    with Display() as display:
        result = run_audit([corpus], AuditConfig(deep=True), report=display)
    click.echo(render_text(result))
    return result.ok


def _preview(corpus: str, destination: str, sources: list[str]) -> bool:
    from lvm_data.samplecorpus.sheet import write_source_sheet
    from lvm_data.tokenizer import CheckpointError

    click.echo(f"[4/4] preview: one sentence of each source (the longest of its first few), decoded, in {destination}")
    try:
        with Display() as display:
            sheet, _ = write_source_sheet(corpus, destination, sources, report=display)
    except (PreviewError, CheckpointError) as err:
        _err(f"error: cannot write the preview: {err}")
        return False
    for row in sheet.rows:
        click.echo(f"      {row.label}")
    return True


def _every_source_wrote(corpus: str) -> bool:
    """Whether every source of the finished job wrote sentences (the sample must show every data type)."""
    manifest = read_manifest(corpus)
    assert manifest is not None  # run_command returned 0: the job finished and wrote it
    empty = [name for name, totals in manifest["sources"].items() if totals["sentences"] == 0]
    if empty:
        _err(f"error: no sentence was written for {', '.join(empty)}; see their ledger rows in {corpus}/ledger")
    return not empty


def _print_next(out: str, seconds: dict[str, float]) -> None:
    o = out.rstrip("/") or "."
    q = shlex.quote
    took = ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items())
    click.echo(
        f"\nSample corpus ready ({sum(seconds.values()):.0f} s: {took}):\n"
        f"  {o}/{MEDIA}/        inputs: photos, faces, videos, stereo pair, sequence frames, annotations\n"
        f"  {o}/job.yaml      the job that ran (a real job file: copy it for your own data)\n"
        f"  {o}/{CORPUS}/       sentences/, ledger/, units/, manifest.json\n"
        f"  {o}/{PREVIEW}   one sentence per source, decoded\n"
        "Next:\n"
        f"  lvm-data audit {q(o + '/' + CORPUS)} --deep --report {q(o + '/report')}   # + charts, HTML\n"
        f"  lvm-data preview {q(o + '/' + CORPUS)} --source videos --n 4 --out {q(o + '/videos.png')}\n"
        f"  lvm-data train {q(o + '/' + CORPUS)} --model tiny --steps 200 --lr 3e-3 --min-lr 3e-4 "
        f"--eval-every 50 --out {q(o + '/train')}   # about 4 minutes on 2 CPU cores\n"
        f"  lvm-data run {q(o + '/job.yaml')}   # again: every unit is committed, nothing is redone"
    )
