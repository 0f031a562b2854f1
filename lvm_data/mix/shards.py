"""What a mix writes, and how it commits.

    MIX_OUT/mix.yaml                            the mix file as run
    MIX_OUT/train/part-SSSSS.parquet            training shards, in the mix's global order (shard by shard)
    MIX_OUT/validation/part-SSSSS.parquet       held-out sentences (by a hash of their id)
    MIX_OUT/shards/SPLIT-SSSSS.json             a shard's commit marker, written after its file
    MIX_OUT/manifest.json                       shares asked and achieved, per part and per shard; inputs
    MIX_OUT/README.md                           a dataset card: `datasets.load_dataset(MIX_OUT)` gives the splits

A row: tokens (list<uint16>), n_images, and its provenance: part, output (the job output it came from),
source, template, task, sentence_id (its id there), copy (0 for the first pass over it, 1 for a repeat, ...).
Files are written like a job's units (a '.tmp-' name, checked, moved; the marker last), so a kill leaves
whole shards only and a rerun writes the missing ones; the same mix file, inputs and seed give the same bytes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from lvm_data import storage
from lvm_data.progress import Meter, Poller, Report, Snapshot
from lvm_data.shards.reader import visible_files
from lvm_data.shards.writer import token_lists, write_parquet_atomic

log = logging.getLogger(__name__)
SPLITS = ("train", "validation")
SCHEMA_VERSION = "mix-1.0"
MIX_FILE, MANIFEST, CARD = "mix.yaml", "manifest.json", "README.md"
SCHEMA = pa.schema(
    [
        ("tokens", pa.list_(pa.uint16())),
        ("n_images", pa.int32()),
        ("part", pa.string()),
        ("output", pa.string()),
        ("source", pa.string()),
        ("template", pa.string()),
        ("task", pa.string()),
        ("sentence_id", pa.string()),
        ("copy", pa.int32()),
    ]
)

# codes and the repeated names dictionary-encoded; sentence ids (unique, in mix order) left to zstd
ENCODINGS = {
    "use_dictionary": ["tokens.list.element", "n_images", "part", "output", "source", "template", "task", "copy"]
}


@dataclass(frozen=True)
class MixRow:
    """One sentence as the mix carries it (small and picklable: Beam moves these)."""

    part: str
    output: str
    source: str
    template: str
    task: str
    sentence_id: str
    n_images: int
    tokens: np.ndarray  # (n,) uint16
    copy: int = 0


STRING_FIELDS = ("part", "output", "source", "template", "task", "sentence_id")


class RowBatch:
    """Rows that cross a shuffle together: pickled column by column (one array of codes, not an array per row),
    which is most of what moving them costs."""

    def __init__(self, rows: Sequence[MixRow] = ()):
        self.rows = list(rows)

    def __getstate__(self) -> dict:
        rows = self.rows
        return {
            "strings": [[getattr(r, f) for r in rows] for f in STRING_FIELDS],
            "n_images": np.array([r.n_images for r in rows], np.int32),
            "copy": np.array([r.copy for r in rows], np.int32),
            "lengths": np.array([len(r.tokens) for r in rows], np.int64),
            "tokens": np.concatenate([r.tokens for r in rows]) if rows else np.zeros(0, np.uint16),
        }

    def __setstate__(self, state: dict) -> None:
        ends = np.cumsum(state["lengths"])
        starts = ends - state["lengths"]
        tokens = state["tokens"]
        parts, outputs, sources, templates, tasks, ids = state["strings"]  # STRING_FIELDS, MixRow's first six
        self.rows = [
            MixRow(
                parts[i],
                outputs[i],
                sources[i],
                templates[i],
                tasks[i],
                ids[i],
                int(state["n_images"][i]),
                tokens[starts[i] : ends[i]],
                int(state["copy"][i]),
            )
            for i in range(len(starts))
        ]

    def __len__(self) -> int:
        return len(self.rows)


def shard_file(split: str, shard: int) -> str:
    return f"{split}/part-{shard:05d}.parquet"


def marker_file(split: str, shard: int) -> str:
    return f"shards/{split}-{shard:05d}.json"


def shard_table(rows: Sequence[MixRow], meta: Mapping[str, object]) -> pa.Table:
    columns = [token_lists([r.tokens for r in rows]), pa.array([r.n_images for r in rows], pa.int32())]
    columns += [
        pa.array([getattr(r, name) for r in rows], pa.string())
        for name in ("part", "output", "source", "template", "task", "sentence_id")
    ]
    columns.append(pa.array([r.copy for r in rows], pa.int32()))
    return pa.Table.from_arrays(
        columns, schema=SCHEMA.with_metadata({f"lvm_data.{k}".encode(): str(v).encode() for k, v in meta.items()})
    )


def commit_shard(out: str, split: str, shard: int, rows: Sequence[MixRow], meta: dict[str, str], mix_hash: str) -> dict:
    """Write the shard's file, then its marker; returns the marker (counts per part)."""
    table = shard_table(
        rows, {**meta, "schema_version": SCHEMA_VERSION, "split": split, "shard": shard, "mix_hash": mix_hash}
    )
    nbytes = write_parquet_atomic(storage.join(out, shard_file(split, shard)), table, ENCODINGS)
    parts: dict[str, dict[str, int]] = {}
    for r in rows:
        counts = parts.setdefault(r.part, {"sentences": 0, "tokens": 0, "repeats": 0})
        counts["sentences"] += 1
        counts["tokens"] += len(r.tokens)
        counts["repeats"] += r.copy > 0
    marker = {
        "split": split,
        "shard": shard,
        "file": shard_file(split, shard),
        "bytes": nbytes,
        "mix_hash": mix_hash,
        "sentences": len(rows),
        "tokens": int(sum(len(r.tokens) for r in rows)),
        "parts": dict(sorted(parts.items())),
    }
    storage.write_bytes(storage.join(out, marker_file(split, shard)), json.dumps(marker, sort_keys=True).encode())
    return marker


def read_markers(out: str) -> list[dict]:
    """The committed shards' markers; a damaged one (outside damage: markers are written whole) is left out, so
    its shard counts as not written and a rerun writes it again."""
    markers = []
    for uri in visible_files(storage.join(out, "shards"), ".json"):
        try:
            marker = json.loads(storage.read_bytes(uri))
        except (ValueError, UnicodeDecodeError):
            log.warning("%s: damaged shard marker, left out: the shard is written again by a rerun", uri)
            continue
        if isinstance(marker, dict) and marker.get("split") in SPLITS and isinstance(marker.get("shard"), int):
            markers.append(marker)
    return sorted(markers, key=lambda m: (SPLITS.index(m["split"]), m["shard"]))


def committed(out: str, mix_hash: str) -> set[tuple[str, int]]:
    """(split, shard) already written for this mix; raises if the folder holds another mix's shards."""
    found = set()
    for marker in read_markers(out):
        if marker["mix_hash"] != mix_hash:
            raise ValueError(
                f"{out}: holds shards of another mix (other mix file, inputs or seed: mix hash "
                f"{marker['mix_hash'][:12]} vs {mix_hash[:12]}); write this mix to a new output folder"
            )
        found.add((marker["split"], marker["shard"]))
    return found


def shares(counts: dict[str, dict[str, int]]) -> dict[str, float]:
    total = sum(c["tokens"] for c in counts.values()) or 1
    return {name: c["tokens"] / total for name, c in sorted(counts.items())}


def dataset_card(name: str, splits: Sequence[str]) -> str:
    """README.md whose YAML header tells `datasets.load_dataset(MIX_OUT)` where each split's files are."""
    files = "\n".join(f"      - split: {split}\n        path: {split}/*.parquet" for split in splits)
    return (
        f"---\nconfigs:\n  - config_name: default\n    data_files:\n{files}\n---\n\n# {name}\n\n"
        "A visual-sentence mixture written by `lvm-data mix` (see manifest.json for the shares asked and "
        "achieved). Rows: `tokens` (VQGAN codes, image-major), `n_images`, and where each came from "
        "(`part`, `output`, `source`, `template`, `task`, `sentence_id`, `copy`). Train rows are in the "
        "mix's order: shard by shard, top to bottom.\n"
    )


class ShardProgress(Poller):
    """The mix's progress while its shards are written: shards written of `total` (from their markers), with the
    tokens they hold. Shards a resumed mix wrote before count as done, not in the rate."""

    def __init__(self, out: str, total: int, name: str, report: Report, interval: float = 2.0):
        self.out = out
        before = len(read_markers(out))
        self.meter = Meter(f"mix {name}", "shards", total, report, interval=interval, done=before)

    def poll(self) -> Snapshot:
        markers = read_markers(self.out)
        self.meter.set(len(markers), detail=f"tokens {sum(m['tokens'] for m in markers):,}")
        return self.meter.snapshot()
