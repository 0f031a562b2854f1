"""What a person sees about a run: the plan (`--dry-run`) and a progress display polling unit markers.

Nothing here prints: lines go to an `emit` callable the CLI provides; the clock is injectable.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from lvm_data import storage
from lvm_data.curation.index import plan_lines as curation_plan_lines
from lvm_data.job.config import shard_size_of
from lvm_data.job.runs import Run
from lvm_data.shards import layout
from lvm_data.shards.reader import visible_files

# Parquet bytes per token measured by `lvm-data bench pipeline` (dictionary-encoded uint16 + zstd);
# used only for --dry-run estimates.
BYTES_PER_TOKEN = 1.65
SHOW_UNITS = 8


def plan_lines(run: Run) -> list[str]:
    """The dry-run report: per source its units, item counts, what is committed; token and byte estimates."""
    ctx = run.context
    job, tok = ctx.job, ctx.tokenizer
    lines = [f"job {job.name} -> {job.output}", f"tokenizer {tok.uri} ({tok.format}): {tok.image_size}px, "
             f"{tok.tokens_per_image} tokens/image, codebook {tok.codebook_size}; config hash {ctx.config_hash}"]
    total_items = 0
    for name, plan in run.plans.items():
        src = job.source(name)
        shard = shard_size_of(job, src)
        estimate = plan.estimated_items(shard)
        total_items += estimate
        unknown = f" (+ {plan.unknown_units} units counted when read, ~{shard} each)" if plan.unknown_units else ""
        grouping = f", grouped into {plan.n_buckets} buckets" if plan.grouped else ""
        lines.append(f"source {name} ({src.format}, template {src.template}{grouping}): {len(plan.read_units)} units, "
                     f"{plan.known_items} items{unknown}; {len(plan.committed)} of {len(plan.write_units)} write "
                     f"units committed, {len(run.selections[name].units)} to run")
        for read_unit in plan.read_units[:SHOW_UNITS]:
            count = read_unit.max_items or read_unit.unit.n_items
            done = " (committed)" if read_unit.unit.id in plan.committed else ""
            lines.append(f"  unit {read_unit.unit.id}: {'?' if count is None else count} items{done}")
        if len(plan.read_units) > SHOW_UNITS:
            lines.append(f"  ... {len(plan.read_units) - SHOW_UNITS} more units")
    lines += curation_plan_lines(run)
    tokens = total_items * tok.tokens_per_image
    lines.append(f"estimate (one image per item): {total_items} images -> {tokens} tokens, "
                 f"~{tokens * BYTES_PER_TOKEN / 1e6:.1f} MB of sentence files at {BYTES_PER_TOKEN} bytes/token")
    return lines


class Progress:
    """Polls the output's unit markers every `interval` seconds and emits 'units / items / images/s' lines.

    Counts only units this run commits (markers written since the run started), so a resumed run
    shows its own rate. Use as a context manager around the pipeline.
    """

    def __init__(self, run: Run, emit: Callable[[str], None], interval: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        self.run, self.emit, self.interval, self.clock = run, emit, interval, clock
        self.wanted = {unit for (unit, _digest) in run.seeds()}
        self.seen: dict[str, dict | None] = {}  # marker URI -> counts (None: not this run's)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = clock()

    def poll(self) -> str:
        """Read markers committed since the last poll; the current progress line."""
        out = self.run.context.out
        for uri in visible_files(layout.join(out, "units"), ".json"):
            if uri not in self.seen:
                marker = json.loads(storage.read_bytes(uri))
                ours = (marker["source"], marker["unit"]) in self.wanted and marker["committed"] >= self.run.started
                self.seen[uri] = marker["counts"] if ours else None
        done = [c for c in self.seen.values() if c is not None]
        items = sum(c["inputs"] for c in done)
        images = sum(c["images"] for c in done)
        elapsed = max(self.clock() - self._start, 1e-9)
        return (f"units {len(done)}/{len(self.wanted)}  items {items}  images {images}  "
                f"{images / elapsed:.1f} images/s  {elapsed:.0f}s")

    def _loop(self) -> None:
        last = ""
        while not self._stop.wait(self.interval):
            line = self.poll()
            if line != last:
                self.emit(line)
                last = line

    def __enter__(self) -> Progress:
        self._start = self.clock()
        self._thread = threading.Thread(target=self._loop, name="lvm-data-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.emit(self.poll())
