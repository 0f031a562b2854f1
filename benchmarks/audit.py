"""Benchmark `lvm-data audit` on a generated corpus of >= 1M sentences: time and bytes read, against a
naive full read of every file.

    python benchmarks/audit.py --out /tmp/audit-bench                       # both shapes, 1M sentences each
    python benchmarks/audit.py --out /tmp/audit-bench --shape single --unit-sentences 1000 --deep

Shapes: `single` = LAION-like 1-image sentences (256 tokens, one ledger row each: the shape of 88.5 %
of UVDv1), `video` = 16-frame clips (4096 tokens, a ledger row per video naming 4 clips). Files are
written like lvm_data/shards/writer.py writes them (zstd, dictionary encoding, ~4 Mi tokens per row
group, rows sorted by id, statistics on id and n_images only), in the layout of
lvm_data/shards/layout.py, with unit markers and a manifest. Generation is vectorised pyarrow.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _pc
import pyarrow.parquet as pq

from lvm_data.audit import AuditConfig, run_audit
from lvm_data.audit.files import CountingFile, list_output
from lvm_data.audit.report import human_bytes
from lvm_data.determinism import rng_for
from lvm_data.shards import layout
from lvm_data.shards.schema import arrow_schema, file_metadata, schema_version

# pyarrow.compute makes its kernels (pc.equal, pc.sum, ...) at import time, so the type checker cannot
# see them: reach them through an untyped alias.
pc: Any = _pc

TPI, CODEBOOK, FINGERPRINT = 256, 8192, "0f" * 32
ROW_GROUP_TOKENS = 1 << 22  # as lvm_data/shards/writer.py
HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


@dataclass(frozen=True)
class Shape:
    name: str
    source: str
    template: str
    task: str
    n_images: int
    clips_per_item: int  # sentences one input item yields (one ledger row names them all)
    unit_sentences: int  # default sentences per unit file


SHAPES = {
    "single": Shape("single", "laion", "single", "image", 1, 1, 50_000),
    "video": Shape("video", "kinetics", "video", "video", 16, 4, 8_000),
}


def hex_ids(rng: np.random.Generator, n: int) -> pa.StringArray:
    """n sorted random 32-hex-char ids, built straight into an Arrow buffer."""
    raw = np.frombuffer(rng.bytes(16 * n), np.uint8).reshape(n, 16)
    raw = raw[np.lexsort(raw.T[::-1])]
    digits = np.empty((n, 32), np.uint8)
    digits[:, 0::2], digits[:, 1::2] = HEX[raw >> 4], HEX[raw & 15]
    offsets = np.arange(0, 32 * n + 1, 32, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(digits.tobytes()))


def sentence_table(shape: Shape, unit: str, n: int, ids: pa.StringArray, rng: np.random.Generator) -> pa.Table:
    images, per_row = n * shape.n_images, shape.n_images * TPI
    tokens = pa.ListArray.from_arrays(
        pa.array(np.arange(0, n * per_row + 1, per_row, dtype=np.int32)),
        pa.array(rng.integers(0, CODEBOOK, n * per_row, dtype=np.uint16)),
    )
    item = np.repeat(np.arange(n) // shape.clips_per_item, shape.n_images)
    uris = pc.binary_join_element_wise(
        f"gs://raw/{shape.source}/{unit}/",
        pc.cast(pa.array(item), pa.string()),
        ".mp4" if shape.n_images > 1 else ".jpg",
        "",
    )
    frame = pa.array((np.arange(images) % shape.n_images * 8).astype(np.int32))
    role = pa.DictionaryArray.from_arrays(pa.array(np.zeros(images, np.int8)), pa.array(["frame"])).cast(pa.string())
    frames = pa.ListArray.from_arrays(
        pa.array(np.arange(0, images + 1, shape.n_images, dtype=np.int32)),
        pa.StructArray.from_arrays([uris, frame, role], names=["uri", "frame", "role"]),
    )
    columns = [
        ids,
        *(pa.repeat(v, n) for v in (shape.source, shape.template, shape.task)),
        pa.repeat(pa.scalar(shape.n_images, pa.int32()), n),
        tokens,
        frames,
    ]
    meta = file_metadata(
        schema_version=schema_version("sentence"),
        tokenizer_fingerprint=FINGERPRINT,
        codebook_size=CODEBOOK,
        tokens_per_image=TPI,
        job_config_hash="bench",
        source=shape.source,
        unit=unit,
    )
    return pa.Table.from_arrays(columns, schema=arrow_schema("sentence").with_metadata(meta))


def ledger_table(shape: Shape, unit: str, ids: pa.StringArray, failed: int) -> pa.Table:
    """One ok row per input item naming its sentences, then `failed` decode errors."""
    ok = len(ids) // shape.clips_per_item
    keys = pc.binary_join_element_wise(
        f"{shape.source}/{unit}/", pc.cast(pa.array(np.arange(ok + failed)), pa.string()), ""
    )
    ok_ids = pa.ListArray.from_arrays(pa.array(np.arange(0, len(ids) + 1, shape.clips_per_item, dtype=np.int32)), ids)
    no_ids = pa.ListArray.from_arrays(pa.array(np.zeros(failed + 1, np.int32)), pa.array([], pa.string()))
    status = ["ok"] * ok + ["failed"] * failed
    reason = ["ok"] * ok + ["decode_error"] * failed
    detail = [""] * ok + ["cannot identify image file"] * failed
    table = pa.table(
        {
            "key": keys,
            "source": pa.repeat(shape.source, ok + failed),
            "unit": pa.repeat(unit, ok + failed),
            "uri": pc.binary_join_element_wise("gs://raw/", keys, ""),
            "status": status,
            "reason": reason,
            "detail": detail,
            "sentence_ids": pa.concat_arrays([ok_ids, no_ids]),
        },
        schema=arrow_schema("ledger"),
    )
    return table.replace_schema_metadata(
        file_metadata(schema_version=schema_version("ledger"), source=shape.source, unit=unit)
    )


def write(path: Path, table: pa.Table, tokens_per_row: int) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        table,
        path,
        compression="zstd",
        use_dictionary=True,
        # pyarrow documents `bool or list`; its default True alone makes the checker infer bool
        write_statistics=["id", "n_images"],  # pyright: ignore[reportArgumentType]
        row_group_size=max(1, ROW_GROUP_TOKENS // tokens_per_row),
    )
    return path.stat().st_size


def write_unit(out: Path, shape: Shape, index: int, n: int) -> dict:
    unit = f"{index:06d}"
    rng = rng_for(0, shape.name, unit)
    ids = hex_ids(rng, n)
    failed = n // 50  # 2 % of items fail to decode
    s_rel, l_rel = layout.sentences_file(shape.source, unit), layout.ledger_file(shape.source, unit)
    s_bytes = write(out / s_rel, sentence_table(shape, unit, n, ids, rng), shape.n_images * TPI)
    l_bytes = write(out / l_rel, ledger_table(shape, unit, ids, failed), 1)
    ok = n // shape.clips_per_item
    counts = {
        "inputs": ok + failed,
        "ok": ok,
        "filtered": 0,
        "failed": failed,
        "reasons": {"ok": ok, "decode_error": failed} if failed else {"ok": ok},
        "sentences": n,
        "images": n * shape.n_images,
        "tokens": n * shape.n_images * TPI,
    }
    marker = {
        "source": shape.source,
        "unit": unit,
        "items_digest": "bench",
        "sentences_file": s_rel,
        "ledger_file": l_rel,
        "sentences_bytes": s_bytes,
        "ledger_bytes": l_bytes,
        "counts": counts,
        "committed": "2025-01-01T00:00:00+00:00",
    }
    (out / layout.marker_file(shape.source, unit)).parent.mkdir(parents=True, exist_ok=True)
    (out / layout.marker_file(shape.source, unit)).write_text(json.dumps(marker))
    return marker


def manifest(markers: list[dict], source: str) -> dict:
    keys = ("inputs", "ok", "filtered", "failed", "sentences", "images", "tokens")
    totals: dict[str, object] = {k: sum(m["counts"][k] for m in markers) for k in keys}
    reasons: dict[str, int] = {}
    for m in markers:
        for reason, count in m["counts"]["reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + count
    totals["reasons"] = reasons
    sources = {source: {**totals, "units": len(markers), "sentences_bytes": sum(m["sentences_bytes"] for m in markers)}}
    return {
        "schema_version": "1.0",
        "job": {"name": "bench", "config_hash": "bench", "config": {}},
        "tokenizer": {
            "uri": "bench",
            "format": "open-muse",
            "fingerprint": FINGERPRINT,
            "codebook_size": CODEBOOK,
            "tokens_per_image": TPI,
            "image_size": 256,
        },
        "runner": "generated",
        "started": "",
        "finished": "",
        "totals": totals,
        "sources": sources,
        "units": markers,
    }


def generate(out: Path, shape: Shape, sentences: int, unit_sentences: int) -> float:
    started = time.perf_counter()
    markers, index = [], 0
    while sum(m["counts"]["sentences"] for m in markers) < sentences:
        n = min(unit_sentences, sentences - sum(m["counts"]["sentences"] for m in markers))
        markers.append(write_unit(out, shape, index, n))
        index += 1
    (out / layout.MANIFEST).write_text(json.dumps(manifest(markers, shape.source)))
    return time.perf_counter() - started


def naive_full_read(out: Path) -> tuple[float, int, int]:
    """Read every Parquet file whole and count tokens from the data: (seconds, bytes read, tokens)."""
    started, bytes_read, tokens = time.perf_counter(), 0, 0
    listing = list_output(str(out))
    for entry in [*listing.sentences.values(), *listing.ledger.values()]:
        with open(entry.uri, "rb") as raw:
            counting = CountingFile(pa.PythonFile(raw, mode="r"))
            table = pq.read_table(counting)
            bytes_read += counting.bytes_read
        if "tokens" in table.column_names:
            tokens += pc.sum(pc.list_value_length(table["tokens"])).as_py()
    return time.perf_counter() - started, bytes_read, tokens


def bench_shape(out: Path, shape: Shape, args: argparse.Namespace) -> None:
    unit_sentences = args.unit_sentences or shape.unit_sentences
    if out.exists() and not args.reuse:
        shutil.rmtree(out)
    made = 0.0 if out.exists() else generate(out, shape, args.sentences, unit_sentences)
    listing = list_output(str(out))
    sentence_bytes = sum(e.size for e in listing.sentences.values())
    print(
        f"\n== {shape.name}: {args.sentences:,} sentences of {shape.n_images} image(s), {unit_sentences:,} per unit "
        f"({len(listing.sentences)} units); {human_bytes(listing.total_bytes)} on disk "
        f"(sentence files {human_bytes(sentence_bytes)}){f'; generated in {made:.1f} s' if made else ''}"
    )
    configs = [
        ("audit (default)", AuditConfig(workers=args.workers)),
        ("audit --ids all", AuditConfig(ids="all", workers=args.workers)),
        ("audit --ids none", AuditConfig(ids="none", workers=args.workers)),
    ]
    if args.deep:
        configs.append(("audit --deep", AuditConfig(deep=True, workers=args.workers)))
    for label, config in configs:
        result = run_audit([str(out)], config)
        assert result.ok and result.total.sentences == args.sentences, result.findings.to_dict()
        print(
            f"{label:<24} {result.io.seconds:8.2f} s   read {human_bytes(result.io.bytes_read):>10}   "
            f"{100 * result.io.read_fraction:7.3f} % of corpus   ({result.total.tokens:,} tokens)"
        )
    seconds, bytes_read, tokens = naive_full_read(out)
    print(
        f"{'naive full read':<24} {seconds:8.2f} s   read {human_bytes(bytes_read):>10}   "
        f"{100 * bytes_read / listing.total_bytes:7.3f} % of corpus   ({tokens:,} tokens)"
    )
    if not args.keep:
        shutil.rmtree(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", default="out/audit-bench", help="folder for the generated corpora")
    parser.add_argument("--shape", choices=[*SHAPES, "both"], default="both")
    parser.add_argument("--sentences", type=int, default=1_000_000)
    parser.add_argument("--unit-sentences", type=int, help="sentences per unit file (default: per shape)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--deep", action="store_true", help="also time --deep (reads every token)")
    parser.add_argument("--keep", action="store_true", help="keep the corpora (with --reuse, audit them again)")
    parser.add_argument("--reuse", action="store_true", help="audit an existing corpus instead of generating")
    args = parser.parse_args()
    for name in SHAPES if args.shape == "both" else [args.shape]:
        bench_shape(Path(args.out) / name, SHAPES[name], args)


if __name__ == "__main__":
    main()
