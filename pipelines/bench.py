"""`lvm-data bench pipeline`: the Beam pipeline's images/s beside a plain in-process loop doing the same
decode + encode + write with the same tokenizer (lvm_data.local), their ratio, and bytes per token.

Both run the same job end to end on the same corpus (copies of the sample photos): planning, tokenizer
load, decoding, encoding, Parquet + ledger + markers, manifest. Wall-clock seconds; nothing is asserted.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lvm_data import tokenizer as lvm_tokenizer
from lvm_data.config import parse_job_text
from lvm_data.jobs import finish_run, open_run
from lvm_data.local import LocalExecutor
from lvm_data.media.samples import photos
from lvm_data.shards.reader import read_sentences
from lvm_data.shards.writer import SentenceRow, ShardInfo, sentence_table, write_parquet_atomic
from lvm_data.testing import images_source, job_text
from pipelines.tokenize import run_job


@dataclass(frozen=True)
class PipelineBench:
    tokenizer: str
    images: int = 64
    shard_size: int = 32
    batch_size: int = 16
    device: str = "cpu"
    workdir: str | None = None
    repeat: int = 2
    beam_args: tuple[str, ...] = ()


def write_photos(folder: Path, count: int) -> list[Path]:
    """`count` files cycling through the sample photos (distinct names, real decode work each)."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = photos("all")
    out = []
    for i in range(count):
        src = sources[i % len(sources)]
        out.append(folder / f"{i:06d}-{src.name}")
        out[-1].write_bytes(src.read_bytes())
    return out


def run_bench(cfg: PipelineBench) -> dict:
    """Time the plain loop and the pipeline `cfg.repeat` times each, alternating which goes first; keep the best."""
    root = Path(cfg.workdir or tempfile.mkdtemp(prefix="lvm-bench-"))
    write_photos(root / "photos", cfg.images)
    warm = lvm_tokenizer.load(cfg.tokenizer, device=cfg.device, batch_size=cfg.batch_size)
    warm.encode(np.zeros((1, warm.image_size, warm.image_size, 3), np.uint8))  # one-time library start-up, untimed
    best = {"loop": float("inf"), "pipeline": float("inf")}
    manifests = {}
    for i in range(cfg.repeat):
        for kind in (("loop", "pipeline") if i % 2 == 0 else ("pipeline", "loop")):
            text = job_text("bench", root / f"{kind}-{i}", cfg.tokenizer, [images_source("photos", root / "photos")],
                            shard_size=cfg.shard_size, batch_size=cfg.batch_size, device=cfg.device)
            start = time.perf_counter()
            manifests[kind] = _loop(cfg, text) if kind == "loop" else run_job(parse_job_text(text), None,
                                                                                list(cfg.beam_args))
            best[kind] = min(best[kind], time.perf_counter() - start)
    images, pipe = manifests["pipeline"]["totals"]["images"], manifests["pipeline"]
    return {"images": images, "tokenizer": cfg.tokenizer, "runner": pipe["runner"], "device": cfg.device,
            "repeat": cfg.repeat, "pipeline_s": best["pipeline"], "loop_s": best["loop"],
            "pipeline_ips": images / best["pipeline"], "loop_ips": manifests["loop"]["totals"]["images"] / best["loop"],
            "ratio": best["loop"] / best["pipeline"], "same_rows": _rows(root / "loop-0") == _rows(root / "pipeline-0"),
            "bytes_per_token": pipe["sources"]["photos"]["sentences_bytes"] / max(1, pipe["totals"]["tokens"]),
            "bytes_per_token_at_scale": bytes_per_token_at_scale(root / "scale.parquet"), "workdir": str(root)}


def _loop(cfg: PipelineBench, text: str) -> dict:
    """The same job as a plain loop: load the tokenizer, plan, process unit by unit, write the manifest."""
    tokenizer = lvm_tokenizer.load(cfg.tokenizer, device=cfg.device, batch_size=cfg.batch_size)
    run = open_run(parse_job_text(text), tokenizer)
    LocalExecutor(run, tokenizer).execute()
    return finish_run(run, "local loop")


def _rows(out: Path) -> list:
    table = read_sentences(str(out), columns=["id", "tokens"])
    return sorted(zip(table["id"].to_pylist(), table["tokens"].to_pylist(), strict=True))


def bytes_per_token_at_scale(path: Path, rows: int = 4000, codebook: int = 8192) -> float:
    """Bytes/token of a 1M-token shard of uniform random 13-bit codes (no structure to exploit: a worst case)."""
    rng = np.random.default_rng(0)
    data = [SentenceRow(f"{i:032x}", "s", "single", "image", 1, rng.integers(0, codebook, 256).astype(np.uint16),
                        [(f"photos/{i:08d}.jpg", 0, "image")]) for i in range(rows)]
    nbytes = write_parquet_atomic(str(path), sentence_table(data, ShardInfo("fp", codebook, 256, "h"), "s", "u"))
    return nbytes / (rows * 256)


def format_bench(r: dict) -> str:
    return "\n".join([
        f"corpus: {r['images']} images (sample photos), tokenizer {r['tokenizer']} on {r['device']}; "
        f"best of {r['repeat']} runs each, end to end (plan, load, decode, encode, write, manifest)",
        f"plain in-process loop : {r['loop_ips']:8.2f} images/s  ({r['loop_s']:.1f} s)",
        f"pipeline              : {r['pipeline_ips']:8.2f} images/s  ({r['pipeline_s']:.1f} s, {r['runner']})",
        f"ratio pipeline / loop : {r['ratio']:8.2f}   (target >= 0.8)",
        f"identical rows        : {'yes' if r['same_rows'] else 'NO'}",
        f"bytes per token       : {r['bytes_per_token']:8.3f} in this run's files; "
        f"{r['bytes_per_token_at_scale']:.3f} for a 1M-token shard of uniform 13-bit codes (target <= 1.7)",
        f"outputs under {r['workdir']}",
    ])

