"""Hand-made job outputs with known counts, written with pyarrow exactly as the layout says.

`Corpus` holds units as plain rows; tests change rows, metadata or files to plant violations, then
`write()` puts sentence files, ledger files, unit markers and the manifest where the layout wants
them. Markers count what is actually written (as the pipeline's writer does), so a planted row-level
violation does not also make the counts disagree, unless a test edits the counts on purpose.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lvm_data import storage
from lvm_data.shards import layout
from lvm_data.shards.schema import arrow_schema, file_metadata, schema_version

TPI = 4  # tokens per image: tiny, so files stay small
CODEBOOK = 16
FINGERPRINT = "ab" * 32


def sentence_id(*parts: object) -> str:
    return hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=16).hexdigest()


@dataclass
class Unit:
    source: str
    unit: str
    sentences: list[dict] = field(default_factory=list)
    ledger: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    statistics: bool = True  # min/max statistics on every column (the pipeline writes them for id, n_images)
    row_group_size: int | None = None
    schema: pa.Schema = field(default_factory=lambda: arrow_schema("sentence"))


class Corpus:
    """A job output under construction: add units, plant violations, write."""

    def __init__(self, root: str, tpi: int = TPI, codebook: int = CODEBOOK, fingerprint: str = FINGERPRINT):
        self.root, self.tpi, self.codebook, self.fingerprint = root, tpi, codebook, fingerprint
        self.units: list[Unit] = []
        self.rng = np.random.default_rng(7)

    def add(
        self,
        source: str,
        unit: str,
        n: int,
        n_images: int = 1,
        template: str = "single",
        task: str = "image",
        failed: tuple[str, ...] = (),
        filtered: tuple[str, ...] = (),
    ) -> Unit:
        """n sentences of n_images each, one ok ledger row per sentence, plus failed/filtered rows (by reason)."""
        u = Unit(
            source,
            unit,
            meta={
                "schema_version": schema_version("sentence"),
                "tokenizer_fingerprint": self.fingerprint,
                "codebook_size": self.codebook,
                "tokens_per_image": self.tpi,
                "job_config_hash": "cafe",
                "source": source,
                "unit": unit,
            },
        )
        for i in range(n):
            key = f"{source}/{unit}/{i:04d}.jpg"
            sid = sentence_id(source, unit, i)
            u.sentences.append(
                {
                    "id": sid,
                    "source": source,
                    "template": template,
                    "task": task,
                    "n_images": n_images,
                    "tokens": self.rng.integers(0, self.codebook, n_images * self.tpi).tolist(),
                    "frames": [{"uri": key, "frame": f, "role": "image"} for f in range(n_images)],
                }
            )
            u.ledger.append(ledger_row(source, unit, key, "ok", "ok", [sid]))
        for status, reasons in (("failed", failed), ("filtered", filtered)):
            for j, reason in enumerate(reasons):
                u.ledger.append(ledger_row(source, unit, f"{source}/{unit}/{status}{j}.jpg", status, reason, []))
        self.units.append(u)
        return u

    def unit(self, source: str, unit: str) -> Unit:
        return next(u for u in self.units if (u.source, u.unit) == (source, unit))

    def write(self, markers: bool = True, manifest: bool = True) -> list[dict]:
        """Write every unit's files (and markers, and the manifest from them); returns the markers."""
        written = [self.write_unit(u, marker=markers) for u in self.units]
        if manifest:
            self.write_manifest(written)
        return written

    def write_unit(self, u: Unit, marker: bool = True) -> dict:
        sentences_rel, ledger_rel = layout.sentences_file(u.source, u.unit), layout.ledger_file(u.source, u.unit)
        table = pa.Table.from_pylist(u.sentences, schema=u.schema).replace_schema_metadata(file_metadata(**u.meta))
        sentences_bytes = write_table(layout.join(self.root, sentences_rel), table, u.statistics, u.row_group_size)
        ledger = pa.Table.from_pylist(u.ledger, schema=arrow_schema("ledger")).replace_schema_metadata(
            file_metadata(schema_version=schema_version("ledger"), source=u.source, unit=u.unit)
        )
        ledger_bytes = write_table(layout.join(self.root, ledger_rel), ledger)
        record = {
            "source": u.source,
            "unit": u.unit,
            "items_digest": "d",
            "sentences_file": sentences_rel,
            "ledger_file": ledger_rel,
            "sentences_bytes": sentences_bytes,
            "ledger_bytes": ledger_bytes,
            "counts": counts(u),
            "committed": "2024-01-01T00:00:00+00:00",
        }
        if marker:
            write_json(layout.join(self.root, layout.marker_file(u.source, u.unit)), record)
        return record

    def write_manifest(self, markers: list[dict]) -> dict:
        keys = ("inputs", "ok", "filtered", "failed", "sentences", "images", "tokens")
        sources: dict[str, dict] = {}
        for m in markers:
            s = sources.setdefault(
                m["source"], {**dict.fromkeys(keys, 0), "reasons": Counter(), "units": 0, "sentences_bytes": 0}
            )
            for k in keys:
                s[k] += m["counts"][k]
            s["reasons"].update(m["counts"]["reasons"])
            s["units"] += 1
            s["sentences_bytes"] += m["sentences_bytes"]
        totals = {k: sum(s[k] for s in sources.values()) for k in keys}
        totals["reasons"] = dict(sum((s["reasons"] for s in sources.values()), Counter()))
        for s in sources.values():
            s["reasons"] = dict(s["reasons"])
        document = {
            "schema_version": "1.0",
            "job": {"name": "t", "config_hash": "cafe", "config": {}},
            "tokenizer": {
                "uri": "builtin:test",
                "format": "muse",
                "fingerprint": self.fingerprint,
                "codebook_size": self.codebook,
                "tokens_per_image": self.tpi,
                "image_size": 64,
            },
            "runner": "DirectRunner",
            "started": "s",
            "finished": "f",
            "totals": totals,
            "sources": sources,
            "units": markers,
        }
        write_json(layout.join(self.root, layout.MANIFEST), document)
        return document


def ledger_row(source: str, unit: str, key: str, status: str, reason: str, ids: list[str]) -> dict:
    return {
        "key": key,
        "source": source,
        "unit": unit,
        "uri": f"file:///{key}",
        "status": status,
        "reason": reason,
        "detail": "" if status == "ok" else "planted",
        "sentence_ids": ids,
    }


def counts(u: Unit) -> dict:
    statuses = Counter(r["status"] for r in u.ledger)
    return {
        "inputs": len(u.ledger),
        "ok": statuses["ok"],
        "filtered": statuses["filtered"],
        "failed": statuses["failed"],
        "reasons": dict(Counter(r["reason"] for r in u.ledger)),
        "sentences": len(u.sentences),
        "images": sum(s["n_images"] for s in u.sentences),
        "tokens": sum(len(s["tokens"]) for s in u.sentences),
    }


def write_table(uri: str, table: pa.Table, statistics: bool = True, row_group_size: int | None = None) -> int:
    fs, path = storage.filesystem(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as stream:
        pq.write_table(
            table,
            stream,
            compression="zstd",
            row_group_size=row_group_size,
            write_statistics=True if statistics else ["id", "n_images"],
        )
    return fs.get_file_info(path).size


def write_json(uri: str, document: dict) -> None:
    storage.write_bytes(uri, json.dumps(document, indent=1).encode())


def standard(root: str) -> Corpus:
    """Three sources, five units, known counts (see EXPECTED)."""
    c = Corpus(root)
    c.add("laion", "00000", 6, failed=("decode_error",), filtered=("too_small", "too_small"))
    c.add("laion", "00001", 4)
    c.add("kinetics", "00000", 3, n_images=4, template="video", task="video", failed=("timeout",))
    pairs = c.add("coco", "00000", 2, n_images=2, template="pairs", task="depth")
    extra = c.add("coco", "00001", 3, n_images=2, template="pairs", task="segmentation")
    pairs.row_group_size = extra.row_group_size = 2
    return c


# (source, template, task) -> (sentences, images, tokens) of `standard`
EXPECTED = {
    ("laion", "single", "image"): (10, 10, 40),
    ("kinetics", "video", "video"): (3, 12, 48),
    ("coco", "pairs", "depth"): (2, 4, 16),
    ("coco", "pairs", "segmentation"): (3, 6, 24),
}
# source -> (inputs, ok, filtered, failed)
EXPECTED_LEDGER = {"laion": (13, 10, 2, 1), "kinetics": (4, 3, 0, 1), "coco": (5, 5, 0, 0)}
