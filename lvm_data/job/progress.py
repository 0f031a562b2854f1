"""What a person sees about a run: the plan (`--dry-run`) and its progress (units committed and in flight).

Nothing here prints: plan lines are returned, progress goes as Snapshots (lvm_data.progress) to a `report`
callable the CLI provides (lvm_data.cli.display); the clock is injectable.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lvm_data import storage
from lvm_data.job.config import shard_size_of
from lvm_data.job.dedup_index import plan_lines as curation_plan_lines
from lvm_data.job.heartbeat import read_in_flight
from lvm_data.job.plan import CONTAINER_ITEMS, unit_guess
from lvm_data.job.runs import Run
from lvm_data.progress import Meter, Poller, Report, Snapshot
from lvm_data.shards import layout
from lvm_data.shards.reader import parse_marker, visible_files

# Parquet bytes per token measured by `lvm-data bench pipeline` (dictionary-encoded uint16 + zstd);
# used only for --dry-run estimates.
BYTES_PER_TOKEN = 1.65
SHOW_UNITS = 8


def plan_lines(run: Run) -> list[str]:
    """The dry-run report: per source its units, item counts, what is committed; token and byte estimates."""
    ctx = run.context
    job, tok = ctx.job, ctx.tokenizer
    lines = [
        f"job {job.name} -> {job.output}",
        f"tokenizer {tok.uri} ({tok.format}): {tok.image_size}px, "
        f"{tok.tokens_per_image} tokens/image, codebook {tok.codebook_size}; config hash {ctx.config_hash}",
    ]
    total_items = 0
    for name, plan in run.plans.items():
        src = job.source(name)
        shard = shard_size_of(job, src)
        estimate = plan.estimated_items(shard)
        total_items += estimate
        guess = min(shard, CONTAINER_ITEMS)
        unknown = f" (+ {plan.unknown_units} units counted when read, ~{guess} each)" if plan.unknown_units else ""
        grouping = f", grouped into {plan.n_buckets} buckets" if plan.grouped else ""
        lines.append(
            f"source {name} ({src.format}, template {src.template}{grouping}): {len(plan.read_units)} units, "
            f"{plan.known_items} items{unknown}; {len(plan.committed)} of {len(plan.write_units)} write "
            f"units committed, {len(run.selections[name].units)} to run"
        )
        for read_unit in plan.read_units[:SHOW_UNITS]:
            count = read_unit.max_items or read_unit.unit.n_items
            done = " (committed)" if read_unit.unit.id in plan.committed else ""
            lines.append(f"  unit {read_unit.unit.id}: {'?' if count is None else count} items{done}")
        if len(plan.read_units) > SHOW_UNITS:
            lines.append(f"  ... {len(plan.read_units) - SHOW_UNITS} more units")
    lines += curation_plan_lines(run)
    tokens = total_items * tok.tokens_per_image
    lines.append(
        f"estimate (one image per item): {total_items} images -> {tokens} tokens, "
        f"~{tokens * BYTES_PER_TOKEN / 1e6:.1f} MB of sentence files at {BYTES_PER_TOKEN} bytes/token"
    )
    return lines


def items_to_run(run: Run) -> int:
    """Items this run processes: its selected units' planned counts (units counted when read: ~shard_size)."""
    total = 0
    for name, plan in run.plans.items():
        selection = run.selections[name]
        if selection.retry:
            total += sum(len(failed) for failed, _known in selection.retry.values())
            continue
        shard = shard_size_of(run.context.job, run.context.job.source(name))
        if plan.grouped:  # every read unit feeds every bucket: the selected buckets' share of the items
            share = len(selection.units) / max(1, len(plan.write_units))
            total += round(plan.estimated_items(shard) * share)
            continue
        for read_unit in plan.read_units:
            if read_unit.unit.id in selection.units:
                n = read_unit.unit.n_items
                total += read_unit.max_items or n if n is not None else unit_guess(read_unit, shard)
    return total


def guessed_units(run: Run) -> dict[str, int]:
    """Unit name -> the guess `items_to_run` made for it, for this run's units counted only when read."""
    out = {}
    for name, plan in run.plans.items():
        if plan.grouped or run.selections[name].retry:
            continue
        shard = shard_size_of(run.context.job, run.context.job.source(name))
        out.update(
            {
                f"{name}/{r.unit.id}": unit_guess(r, shard)
                for r in plan.read_units
                if r.unit.n_items is None and r.unit.id in run.selections[name].units
            }
        )
    return out


class Progress(Poller):
    """The job's progress: polls unit markers and the executors' in-flight files (lvm_data.job.heartbeat)
    every `interval` seconds and reports Snapshots of items done, with images and units in the detail.

    Counts only units this run commits (markers written since the run started), so a resumed run shows its
    own rate; a unit in flight counts its items through decoding, a committed one its ledger rows. Use as a
    context manager around the pipeline.
    """

    def __init__(self, run: Run, report: Report, interval: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.run = run
        self.wanted = {unit for (unit, _digest) in run.seeds()}
        self.seen: dict[str, dict | None] = {}  # marker URI -> marker (None: not this run's)
        self.planned, self.guessed = items_to_run(run), guessed_units(run)
        self.meter = Meter(f"run {run.context.job.name}", "items", self.planned, report, interval=interval, clock=clock)

    def poll(self) -> Snapshot:
        """Read what changed since the last poll; the current snapshot."""
        ctx = self.run.context
        for uri in visible_files(layout.join(ctx.out, "units"), ".json"):
            if uri not in self.seen:
                marker = parse_marker(storage.read_bytes(uri))
                if marker is None:  # damaged (planning warned): read again next time, its unit may be redone
                    continue
                ours = (marker["source"], marker["unit"]) in self.wanted and marker["committed"] >= self.run.started
                self.seen[uri] = marker if ours else None
        done = {f"{m['source']}/{m['unit']}": m["counts"] for m in self.seen.values() if m is not None}
        flying = {name: c for name, c in read_in_flight(ctx.out, ctx.run_id).items() if name not in done}
        items = sum(c["inputs"] for c in done.values()) + sum(c["items"] for c in flying.values())
        images = sum(c["images"] for c in done.values()) + sum(c["images"] for c in flying.values())
        detail = f"images {images}  units {len(done)}/{len(self.wanted)}" + (
            f" ({len(flying)} in flight)" if flying else ""
        )
        # a committed tar's real count replaces its guess in the total
        total = self.planned + sum(c["inputs"] - self.guessed[n] for n, c in done.items() if n in self.guessed)
        self.meter.set(items, total=max(total, items), detail=detail)
        return self.meter.snapshot()
