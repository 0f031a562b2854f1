"""`lvm-data`: the command line. Commands only parse, build a config and call a function."""

from __future__ import annotations

import contextlib

import click

from lvm_data.cli.display import Display


def beam_args(ctx: click.Context, runner: str | None = None) -> list[str]:
    """The arguments a command passes to Beam: refused, with the closest flag, unless Beam knows them."""
    from pipelines.beam_flags import closest, unknown_arguments

    unknown = unknown_arguments(ctx.args)
    if unknown:
        ours = [
            opt for param in ctx.command.params for opt in (*param.opts, *param.secondary_opts) if opt.startswith("--")
        ]
        word = unknown[0]
        if not word.startswith("-"):
            raise click.UsageError(
                f"unexpected argument {word!r}: it is neither an option of this command nor a Beam flag's value"
            )
        guess = closest(word, ours)
        raise click.UsageError(
            f"no such option: {word} (neither an option of this command nor a Beam flag)"
            + (f"; did you mean {guess}?" if guess else "; see --help")
        )
    return ([f"--runner={runner}"] if runner else []) + list(ctx.args)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Images, videos and annotated datasets to VQGAN visual sentences in Parquet."""


@main.group()
def tokenizer() -> None:
    """Inspect VQGAN checkpoints."""


@main.group()
def bench() -> None:
    """Benchmarks that print throughput figures."""


@tokenizer.command("inspect")
@click.argument("uri")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option(
    "--cache-dir", help="Cache for gs:// and hf:// downloads (default: $LVM_DATA_CACHE or ~/.cache/lvm-data)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def tokenizer_inspect(uri: str, device: str, cache_dir: str | None, as_json: bool) -> None:
    """Format, config, parameters, fingerprint, codebook, input range and round-trip PSNR of URI.

    URI: a local folder or .ckpt, gs://bucket/prefix, hf://org/name[@revision][/subfolder] or builtin:NAME.
    PSNR is measured on the held-out sample photos, squashed to the tokenizer's input size.
    """
    import json

    from lvm_data.tokenizer import CheckpointError, load
    from lvm_data.tokenizer.inspection import format_inspection, inspect_tokenizer

    try:
        report = inspect_tokenizer(load(uri, device=device, cache_dir=cache_dir))
    except CheckpointError as err:
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps(report.to_dict(), indent=1) if as_json else format_inspection(report))


@tokenizer.command("train")
@click.option(
    "--out",
    required=True,
    help="Folder to write config.json, model.safetensors, CARD.md and "
    "training_log.json to (the shipped one: lvm_data/tokenizer/builtin/tiny).",
)
@click.option("--steps", default=2500, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1), help="Crops per step.")
@click.option(
    "--crop",
    default=128,
    show_default=True,
    type=click.IntRange(min=16),
    help="Training crop size in pixels (a multiple of 16).",
)
@click.option("--lr", default=5e-4, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--seed", default=0, show_default=True, help="Seeds initialisation, batches and restarts (by hashing).")
@click.option(
    "--threads",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="torch CPU threads (on a machine other jobs load, 1 is steadier: spinning OpenMP threads stall).",
)
@click.option(
    "--bf16/--no-bf16",
    default=True,
    show_default=True,
    help=(
        "bfloat16 autocast while training (fast on CPUs with AMX/AVX512-BF16; on one with neither, AVX2 only, "
        "it is emulated, about 30x slower: pass --no-bf16); weights stay float32."
    ),
)
def tokenizer_train(out: str, threads: int, **options) -> None:
    """Train the small CPU VQGAN (builtin:tiny recipe) on the packaged sample photos and video frames.

    Evaluates the written folder on the held-out photos and writes its card. Run it with `nice -n 10`
    on a shared machine.
    """
    from pathlib import Path

    import torch

    from lvm_data.tokenizer.card import build_builtin
    from lvm_data.tokenizer.training import TrainConfig, slow_bf16_warning

    torch.set_num_threads(threads)
    try:
        config = TrainConfig(**options)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err
    if warning := slow_bf16_warning(config):
        click.echo(f"warning: {warning}", err=True)

    def log(row: dict) -> None:
        rank = f" latent-rank {row['latent_rank']:.1f}" if "latent_rank" in row else ""
        extra = f" heldout-frames {row['heldout_frames_psnr']:.2f} dB" if "heldout_frames_psnr" in row else ""
        click.echo(
            f"step {row['step']} {row['phase']} loss {row['loss']:.4f} crops {row['psnr']:.2f} dB{rank} "
            f"codes {row['codes_used']} restarts {row['restarts']} {row['seconds']:.0f}s{extra}",
            err=True,
        )

    report = build_builtin(config, Path(out), log=log)
    for name, value in report.heldout_psnr.items():
        click.echo(f"{name}: {value:.2f} dB")
    click.echo(
        f"mean held-out PSNR {report.mean_psnr:.2f} dB; {report.usage_sources.distinct} codes used "
        f"on the training sources; {report.weights_bytes:,} bytes of weights; "
        f"{report.result.wall_seconds / 60:.1f} min training; wrote {out}"
    )


@bench.command("tokenizer")
@click.option(
    "--config",
    "model",
    default="fixture-small",
    show_default=True,
    help="lvm | fixture-small (random weights) | a checkpoint path or URI.",
)
@click.option("--device", default="auto", show_default=True, help="auto (GPU when present), cpu, cuda, cuda:N.")
@click.option("--dtype", default="float32", show_default=True, type=click.Choice(["float32", "bfloat16"]))
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1))
@click.option("--compile", is_flag=True, help="torch.compile the encoder (the first batches compile, untimed).")
@click.option("--channels-last", is_flag=True, help="Run the convolutions in channels-last memory format.")
@click.option("--batches", default=5, show_default=True, type=click.IntRange(min=1), help="Timed batches.")
@click.option("--warmup", default=1, show_default=True, type=click.IntRange(min=0), help="Untimed batches first.")
def bench_tokenizer(**options) -> None:
    """Encode throughput (images/s) for a tokenizer config, device, dtype and batch size."""
    from benchmarks.tokenizer import BenchSettings, format_result, run_bench
    from lvm_data.cli.jobs import show_warnings
    from lvm_data.tokenizer import CheckpointError

    try:
        with show_warnings():  # e.g. bfloat16 on a CPU that emulates it
            result = run_bench(BenchSettings(**options))
    except (CheckpointError, ValueError, RuntimeError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(format_result(result))


@main.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--deep",
    is_flag=True,
    help="Also read the tokens: codebook usage, entropy, dead codes, exact "
    "duplicate sentences, and length and code-range checks per sentence.",
)
@click.option(
    "--target",
    metavar="MIX.yaml",
    help="Target mixture to compare token shares with: a YAML file (local or gs://) or a bundled name (uvdv1).",
)
@click.option(
    "--ids",
    "ids",
    type=click.Choice(["all", "sample", "none"]),
    default="sample",
    show_default=True,
    help="Units whose sentence ids and ledger keys are read for the checks that need them (duplicate ids "
    "and keys, ledger ids missing from shards, orphan sentences): all; sample (every unit of an output "
    "under 64 MB, else a seeded sample holding 10 % of its bytes: about 1 % of the corpus is read); "
    "none (footers and dictionary-encoded columns only). --deep reads all.",
)
@click.option("--no-ids", is_flag=True, help="The same as --ids none.")
@click.option("--json", "as_json", is_flag=True, help="Print the audit as JSON instead of tables.")
@click.option(
    "--report",
    "report_dir",
    metavar="DIR",
    help="Also write report.md, report.html, report.json and PNG charts to DIR (local or gs://).",
)
@click.option("--workers", default=8, show_default=True, type=click.IntRange(min=1), help="Files read at once.")
@click.pass_context
def audit(
    ctx: click.Context,
    paths: tuple[str, ...],
    deep: bool,
    target: str | None,
    ids: str,
    no_ids: bool,
    as_json: bool,
    report_dir: str | None,
    workers: int,
) -> None:
    """Audit job outputs (each PATH is a job's OUT folder, local or gs://).

    Counts per source x template x task come from Parquet footers and small columns, so only a
    small fraction of the corpus is read. Exit status: 0 when no violation is found, 1 when
    violations are found (codes out of range, wrong lengths, duplicate ids, schema mismatches,
    unreadable files, ledger/manifest inconsistencies, ...), 2 when a PATH or the target cannot be used.
    """
    from lvm_data.audit import AuditConfig, AuditPathError, TargetError, load_target, run_audit
    from lvm_data.audit.report import render_json, render_text, write_report

    try:
        config = AuditConfig(
            deep=deep, ids="none" if no_ids else ids, target=load_target(target) if target else None, workers=workers
        )
        with Display() as display:
            result = run_audit(list(paths), config, report=display)
    except (AuditPathError, TargetError) as error:
        raise click.UsageError(str(error)) from error
    click.echo(render_json(result) if as_json else render_text(result))
    if report_dir:
        write_report(result, report_dir)
        click.echo(f"report written to {report_dir}", err=True)
    ctx.exit(0 if result.ok else 1)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("job_file")
@click.option("--runner", help="Beam runner (default: the embedded FnApiRunner); other Beam flags pass through.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N items of each source.")
@click.option("--output", help="Write here instead of the job file's `output`.")
@click.option("--dry-run", is_flag=True, help="List units and item counts, estimate tokens and bytes; write nothing.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress display (default: a live bar on a terminal, a line every 30 s in a log).",
)
@click.pass_context
def run(
    ctx: click.Context,
    job_file: str,
    runner: str | None,
    limit: int | None,
    output: str | None,
    dry_run: bool,
    progress: bool | None,
) -> None:
    """Run the job in JOB_FILE: sources -> visual sentences in OUT/sentences, a ledger, a manifest.

    Beam flags pass through, e.g. `--direct_num_workers 2 --direct_running_mode multi_processing`.
    """
    from lvm_data.cli.jobs import run_command

    ctx.exit(
        run_command(job_file, beam_args(ctx, runner), limit=limit, output=output, dry_run=dry_run, progress=progress)
    )


@bench.command("pipeline", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option(
    "--tokenizer",
    "tokenizer_uri",
    default="builtin:tiny",
    show_default=True,
    help="Checkpoint both sides use, e.g. ../shared/fixtures/vqgan/muse-lvm-small.",
)
@click.option("--images", default=64, show_default=True, type=click.IntRange(min=1), help="Corpus size.")
@click.option("--shard-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1), help="Images per encode.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option(
    "--repeat",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="Runs of each side (alternating order); the best time counts.",
)
@click.option("--workdir", help="Keep the corpus and both outputs here (default: a new temporary folder).")
@click.pass_context
def bench_pipeline(ctx: click.Context, tokenizer_uri: str, **options) -> None:
    """The pipeline's images/s beside a plain in-process loop doing the same work; bytes per token.

    Beam flags pass through (e.g. --direct_num_workers 2 --direct_running_mode multi_processing).
    """
    from benchmarks.pipeline import PipelineBench, format_bench, run_bench

    click.echo(format_bench(run_bench(PipelineBench(tokenizer_uri, beam_args=tuple(beam_args(ctx)), **options))))


@bench.command("standin", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--images", default=3000, show_default=True, type=click.IntRange(min=1), help="Corpus size.")
@click.option(
    "--small",
    default=1000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Images of a second, shorter run (the difference gives the steady rate); 0: none.",
)
@click.option(
    "--share",
    default=0.7,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="The stand-in's rate as a share of the measured decode capacity.",
)
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True), help="The stand-in's rate in images/s (instead of --share)."
)
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--shard-size", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--workers", type=click.IntRange(min=1), help="Decode workers (default: one per core).")
@click.option("--loop/--no-loop", default=True, show_default=True, help="Also time the plain loop.")
@click.option(
    "--baseline-tree",
    type=click.Path(exists=True, file_okay=False),
    help="Another checkout (e.g. main before a change): time its pipeline the same way.",
)
@click.option("--workdir", help="Keep the corpus and outputs here (default: a new temporary folder).")
@click.pass_context
def bench_standin(ctx: click.Context, **options) -> None:
    """Whether decode, encode and write overlap, measured on CPUs: the job end to end with a device stand-in
    that sleeps batch / RATE seconds (RATE: a share of this machine's decode capacity). Overlapping stages
    run at RATE (target ratio >= 0.9); stages one after another run well below it.

    Beam flags pass through, as for `lvm-data run`.
    """
    from benchmarks.standin import StandInBench, format_standin, run_standin

    click.echo(format_standin(run_standin(StandInBench(beam_args=tuple(beam_args(ctx)), **options))))


@main.command("sample", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option(
    "--out",
    default="out/sample",
    show_default=True,
    help="Folder for the inputs (media/), the job file "
    "(job.yaml), the corpus (corpus/) and preview.png; run again on it to resume.",
)
@click.option(
    "--tokenizer",
    "tokenizer_uri",
    default="builtin:tiny",
    show_default=True,
    help="Tokenizer for the job, e.g. a folder with LVM's VQGAN checkpoint.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress display (default: a live bar on a terminal, a line every 30 s in a log).",
)
@click.pass_context
def sample(ctx: click.Context, out: str, tokenizer_uri: str, progress: bool | None) -> None:
    """Build the bundled sample corpus from media that installed packages ship: every data type, its job
    file, the pipeline on the embedded runner, the audit and a preview sheet (what `make sample` runs).

    Beam flags pass through, as for `lvm-data run`.
    """
    from lvm_data.cli.sample import sample_command

    ctx.exit(sample_command(out, tokenizer_uri, beam_args(ctx), progress=progress))


@main.command("retry-failed", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("out")
@click.option("--runner", help="Beam runner (default: the embedded FnApiRunner); other Beam flags pass through.")
@click.pass_context
def retry_failed(ctx: click.Context, out: str, runner: str | None) -> None:
    """Reprocess only the failed items of the job output OUT; their units are rewritten atomically."""
    from lvm_data.cli.jobs import retry_command

    ctx.exit(retry_command(out, beam_args(ctx, runner)))


@main.command("mix", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("mix_file")
@click.option("--runner", help="Beam runner (default: the embedded FnApiRunner); other Beam flags pass through.")
@click.pass_context
def mix(ctx: click.Context, mix_file: str, runner: str | None) -> None:
    """Mix job outputs into training shards as MIX_FILE says: parts by weight or epochs, a global shuffle, a
    train / validation split by sentence id, optional exact dedup; a manifest of the shares asked and achieved.

    Run it again on the same output to write the shards a kill left unwritten."""
    from lvm_data.cli.jobs import mix_command

    ctx.exit(mix_command(mix_file, beam_args(ctx, runner)))


# --bos / --eos / --pad alone: the default id (lvm_data.mix.export.DEFAULT_ID)
SPECIAL_ID = {"type": int, "is_flag": False, "flag_value": -1, "metavar": "[ID]"}


@main.command("export-mix")
@click.argument("mix_out")
@click.option(
    "--dest",
    required=True,
    help="Folder for the export (local or gs://); an earlier export there is replaced, any other file there refused.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["easylm", "packed"]),
    default="easylm",
    show_default=True,
    help="easylm: LVM's EasyLM JSONL, a line per sentence; packed: uint16 rows of --length tokens.",
)
@click.option(
    "--bos",
    **SPECIAL_ID,
    help="BOS id before each sentence, >= the codebook size; alone: the codebook "
    "size. easylm: none unless given (LVM's scripts add none); packed: always, default the codebook size.",
)
@click.option("--eos", **SPECIAL_ID, help="EOS id after each sentence; alone: the codebook size + 1 (as --bos).")
@click.option("--pad", **SPECIAL_ID, help="packed: the id that fills the last row (default the codebook size + 2).")
@click.option("--length", type=int, help="packed: tokens per row (default 4096, LVM's context).")
@click.pass_context
def export_mix(ctx: click.Context, mix_out: str, dest: str, fmt: str, **ids) -> None:
    """Write the mix in MIX_OUT (the output of `lvm-data mix`) in its order for other trainers: LVM's EasyLM
    JSONL (DEST/SPLIT/part-SSSSS.jsonl, {"tokens": base64 int32 codes} per line) or packed rows
    (DEST/SPLIT/tokens.bin, index.npy, meta.json); DEST/export.json last. Give MIX_OUT before --bos/--eos/--pad."""
    from lvm_data.cli.jobs import export_mix_command
    from lvm_data.mix.export import ExportConfig

    ctx.exit(export_mix_command(ExportConfig(mix_out, dest, fmt, **ids)))


@main.command("train")
@click.argument("data")
@click.option(
    "--model",
    default="tiny",
    show_default=True,
    help="Shape: tiny (CPU smoke test) or LVM's vqlm_100m, vqlm_300m, vqlm_600m, vqlm_1b, vqlm_3b, vqlm_7b.",
)
@click.option("--steps", default=1000, show_default=True, help="Optimizer steps to train to.")
@click.option("--out", default="out/train", show_default=True, help="Checkpoints, log.jsonl and loss.png go here.")
@click.option("--batch-size", default=8, show_default=True, help="Packed rows per micro-batch per rank.")
@click.option("--grad-accum", default=1, show_default=True, help="Micro-batches per optimizer step.")
@click.option("--context", type=int, help="Tokens per row (default: the model's; LVM: 4096 = 16 images).")
@click.option(
    "--tie-embeddings",
    is_flag=True,
    help="Share the embedding matrix with the output head (LVM's are "
    "untied): a model that copies codes from the context learns it in fewer steps (README: What to expect).",
)
@click.option(
    "--rope-theta",
    type=float,
    help="Rotary base (default: the shape's, 10000 as in LVM); saved in checkpoints and exports.",
)
@click.option("--lr", default=1.5e-4, show_default=True, help="Peak learning rate.")
@click.option("--min-lr", default=3e-5, show_default=True, help="Learning rate at the end of the cosine decay.")
@click.option("--warmup-steps", type=int, help="Linear warmup steps (default: LVM's share, 8000/288000 of --steps).")
@click.option("--decay-steps", type=int, help="Step where the cosine reaches --min-lr (default: --steps).")
@click.option("--weight-decay", default=0.1, show_default=True)
@click.option("--grad-clip", default=1.0, show_default=True)
@click.option("--seed", default=0, show_default=True, help="Seeds initialisation and data order (by hashing).")
@click.option(
    "--val-fraction", default=0.05, show_default=True, help="Share of sentences held out (by a hash of their codes)."
)
@click.option("--val-tokens", default=65536, show_default=True, help="Held-out tokens kept per source.")
@click.option("--eval-every", default=100, show_default=True)
@click.option("--save-every", default=500, show_default=True)
@click.option("--log-every", default=10, show_default=True)
@click.option("--keep-checkpoints", default=2, show_default=True)
@click.option("--workers", "num_workers", default=0, show_default=True, help="DataLoader worker processes.")
@click.option("--device", default="auto", show_default=True, help="auto (GPU when present), cpu, cuda, cuda:N.")
@click.option(
    "--precision",
    type=click.Choice(["auto", "bf16", "fp32"]),
    default="auto",
    show_default=True,
    help=(
        "auto: bf16 autocast on CUDA, float32 on CPU. bf16 on a CPU with AMX or AVX512-BF16 trains faster; "
        "on one with neither (AVX2 only) it is emulated, about 9x slower."
    ),
)
@click.option("--compile", is_flag=True, help="torch.compile the model (GPU).")
@click.option(
    "--resume/--no-resume", default=True, show_default=True, help="Continue from the newest checkpoint in --out."
)
def train_command(**options) -> None:
    """Train a LLaMA-style model on the visual sentences in DATA (a job output folder, a mix output folder, read
    in its order, files or a glob)."""
    import os

    from lvm_data.train.config import TrainConfig
    from lvm_data.train.loop import DistInfo, pooled_phrase, train

    with _user_errors(), Display() as display:
        result = train(TrainConfig(**options), DistInfo.from_env(os.environ), log=display.echo, report=display)
    if result.rank != 0:
        return
    for source, loss in result.val_loss.items():
        unseen = result.unseen_loss[source]
        first, later = result.first_image_loss[source], result.later_images_loss[source]
        click.echo(
            f"{source}: validation loss {loss:.4f} nats/token vs unigram {result.unigram_loss[source]:.4f}, "
            f"same-source unigram {result.source_unigram_loss[source]:.4f}, previous-image copy baseline "
            f"{result.copy_loss[source]:.4f}"
            f" ({'unseen images: ' + format(unseen, '.4f') if unseen is not None else 'no unseen images'}"
            + (
                f"; no earlier image in view {first:.4f}, after earlier images {later:.4f})"
                if later is not None
                else ")"
            )
        )
    if (total := result.pooled) is not None:
        click.echo(f"all {total.sources} sources ({total.codes:,} held-out codes): validation {pooled_phrase(total)}")
    click.echo(f"step {result.step}; checkpoint {result.checkpoint}; log and loss.png in {result.out}")


@main.command("generate")
@click.argument("ckpt")
@click.option("--data", help="Sentences to prompt from (default: the data the checkpoint was trained on).")
@click.option("--prompt-images", default=1, show_default=True, help="Images of the sentence given as the prompt.")
@click.option("--generate", "generate_images", default=1, show_default=True, help="Images to generate.")
@click.option("--out", default="sheet.png", show_default=True, help="PNG: prompt + generated, prompt + data.")
@click.option("--index", default=0, show_default=True, help="Which suitable held-out sentence to continue.")
@click.option("--greedy", is_flag=True, help="Take the most likely code instead of sampling.")
@click.option("--temperature", default=1.0, show_default=True)
@click.option("--top-k", type=int, help="Sample among the k most likely codes.")
@click.option("--seed", default=0, show_default=True)
@click.option("--tokenizer", help="Tokenizer URI (default: the job's, from DATA's manifest.json).")
@click.option("--device", default="auto", show_default=True)
def generate_command(ckpt: str, generate_images: int, **options) -> None:
    """Continue a visual sentence with the model in CKPT (a checkpoint or a training --out folder)."""
    from lvm_data.train.generate import GenerateConfig, generate

    with _user_errors():
        result = generate(GenerateConfig(checkpoint=ckpt, generate=generate_images, **options))
    split = "held-out" if result.held_out else "training (no held-out sentence qualified)"
    click.echo(
        f"continued {split} sentence {result.source}/{result.sentence_id} by {len(result.generated)} "
        f"images; wrote {result.sheet}"
    )


@main.command("export")
@click.argument("ckpt")
@click.option("--out", required=True, help="Folder for config.json + model.safetensors.")
@click.option("--dtype", default="float32", show_default=True, type=click.Choice(["float32", "bfloat16", "float16"]))
def export_command(ckpt: str, out: str, dtype: str) -> None:
    """Export CKPT to the Hugging Face LlamaForCausalLM layout (as LVM's released checkpoints)."""
    from lvm_data.train.export import export

    with _user_errors():
        result = export(ckpt, out, dtype)
    click.echo(f"wrote {result.parameters:,} parameters ({dtype}) to {result.out}")


@main.command("preview")
@click.argument("out")
@click.option("--n", "n", default=8, show_default=True, type=click.IntRange(min=1), help="Sentences (rows) to show.")
@click.option("--out", "destination", default="sheet.png", show_default=True, help="PNG to write (local or gs://).")
@click.option("--tokenizer", help="Tokenizer URI (default: the job's, from OUT/manifest.json).")
@click.option("--source", help="Only sentences of this source.")
@click.option("--cell", type=click.IntRange(min=8), help="Pixels per image on the sheet (default: the tokenizer's).")
def preview_command(
    out: str, n: int, destination: str, tokenizer: str | None, source: str | None, cell: int | None
) -> None:
    """Decode the first N sentences of job output OUT into a contact sheet: one row per sentence,
    labelled with source, template and task."""
    from lvm_data.shards.preview import PreviewError, write_preview
    from lvm_data.tokenizer import CheckpointError

    try:
        with Display() as display:
            sheet = write_preview(out, destination, n, uri=tokenizer, source=source, cell=cell, report=display)
    except (PreviewError, CheckpointError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"wrote {len(sheet.rows)} sentence(s) to {destination}")


@main.command("curation-report")
@click.argument("out")
@click.option("--dest", help="Folder for report.md, report.json and contact_sheet.png (default: OUT/curation).")
@click.option(
    "--per-reason",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="Removed items shown per reason on the contact sheet.",
)
@click.option(
    "--max-files",
    default=256,
    show_default=True,
    type=click.IntRange(min=1),
    help="Sample files read (chosen by a hash of their path).",
)
@click.option(
    "--tokenizer", help="Tokenizer URI to show removed sentences (default: the job's, from OUT/manifest.json)."
)
def curation_report_command(out: str, dest: str | None, per_reason: int, max_files: int, tokenizer: str | None) -> None:
    """What each curation filter removed from job output OUT, per source and reason, with a contact sheet
    of removed items. `lvm-data run` writes it to OUT/curation/ by itself; this rewrites it."""
    from lvm_data.curation.report import ReportError, write_report
    from lvm_data.tokenizer import CheckpointError, load

    try:
        loaded = load(tokenizer, device="cpu") if tokenizer else None
        written = write_report(out, dest, loaded, per_reason, max_files)
    except (ReportError, CheckpointError) as err:
        raise click.ClickException(str(err)) from err
    for uri in written:
        click.echo(f"wrote {uri}")


@main.command("curation-hash")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--image-size",
    default=256,
    show_default=True,
    type=click.IntRange(min=16),
    help="The job's image size (the tokenizer's): perceptual hashes are taken after resizing.",
)
@click.option("--resize", default="squash", show_default=True, type=click.Choice(["squash", "center_crop", "pad"]))
def curation_hash_command(files: tuple[str, ...], image_size: int, resize: str) -> None:
    """Blocklist entries for image FILES: sha256 and md5 of the bytes, phash and dhash of the image.

    Paste them into a blocklist's `hashes` (or a `hash_files` file); one line per entry, '# FILE' above."""
    from lvm_data.curation.blocklist import entries_for
    from lvm_data.outcomes import ItemError

    for uri in files:
        try:
            entries = entries_for(uri, image_size, resize)
        except (ItemError, OSError) as err:
            raise click.ClickException(f"{uri}: {err}") from err
        click.echo(f"# {uri}")
        for entry in entries:
            click.echo(entry)


@contextlib.contextmanager
def _user_errors():
    """Problems with the user's data, checkpoint or options become a one-line error, not a traceback."""
    from lvm_data.train.checkpoint import TrainingCheckpointError
    from lvm_data.train.shards import DataError

    try:
        yield
    except (DataError, TrainingCheckpointError, ValueError) as err:
        raise click.ClickException(str(err)) from err
