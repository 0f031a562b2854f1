"""What each filter removed, with a contact sheet of a sample of the removed images.

`build_report(out)` reads OUT/manifest.json (per source: ledger rows per reason, and the curation
counts of removed items, clips and sentences), the dedup index's marker, and up to `max_files` sample
files (chosen by a hash of their path, so the same ones every time). `write_report` writes
OUT/curation/report.md, report.json and contact_sheet.png: one row per reason, the samples of smallest
rank first, each captioned with the item's file name. Sentences removed in token space are shown decoded
by the job's tokenizer. Blocklisted items are counted, never shown.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from lvm_data import storage
from lvm_data.curation import store
from lvm_data.curation.removed_samples import THUMBNAIL, decode_jpeg
from lvm_data.curation.units import ITEM_REASONS
from lvm_data.determinism import derive_seed
from lvm_data.outcomes import SENTENCE_FILTER_REASONS
from lvm_data.shards import layout
from lvm_data.shards.manifest import read_manifest

if TYPE_CHECKING:
    from lvm_data.tokenizer.tokenizer import Tokenizer

REASONS = sorted(ITEM_REASONS | {r.value for r in SENTENCE_FILTER_REASONS})
LABEL, CAPTION = 16, 12  # pixel heights of a row's label band and a thumbnail's caption band
BACKGROUND, TEXT = (24, 24, 24), (235, 235, 235)
FILES = ("report.md", "report.json", "contact_sheet.png")


class ReportError(ValueError):
    """The output cannot be reported on; the message says what to do."""


@dataclass
class CurationReport:
    out: str
    sources: dict[str, dict]  # source -> inputs, written (ok), removed {reason: n}, ledger {reason: n}
    index: dict | None
    samples: dict[str, list[dict]] = field(default_factory=dict)  # reason -> sample rows shown
    sheet: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        shown = {
            reason: [{k: r[k] for k in ("source", "key", "uri", "detail")} for r in rows]
            for reason, rows in self.samples.items()
        }
        return {"out": self.out, "sources": self.sources, "index": self.index, "samples": shown}


def build_report(
    out: str, tokenizer: Tokenizer | None = None, per_reason: int = 8, max_files: int = 256
) -> CurationReport:
    """The report of a finished job output (needs OUT/manifest.json)."""
    manifest = read_manifest(out)
    if manifest is None:
        raise ReportError(f"{out}: no manifest.json; run the job to the end (lvm-data run) before reporting")
    sources = {name: _source_summary(t) for name, t in manifest["sources"].items()}
    report = CurationReport(out, sources, store.read_index_marker(out))
    report.samples = _samples(out, per_reason, max_files)
    if report.samples:
        report.sheet = contact_sheet(report.samples, _removed_totals(sources), _tokenizer(manifest, tokenizer, report))
    return report


def _source_summary(totals: dict) -> dict:
    return {
        "inputs": totals["inputs"],
        "written": totals["ok"],
        "removed": totals.get("curation", {}).get("removed", {}),
        "ledger": {r: n for r, n in totals["reasons"].items() if r in REASONS},
    }


def _removed_totals(sources: dict[str, dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for summary in sources.values():
        for reason, n in summary["removed"].items():
            out[reason] = out.get(reason, 0) + n
    return out


def _samples(out: str, per_reason: int, max_files: int) -> dict[str, list[dict]]:
    files = sorted(store.sample_files(out), key=lambda uri: derive_seed(0, "curation-report", uri))[:max_files]
    by_reason: dict[str, list[dict]] = {}
    for uri in files:
        for row in store.read_samples(uri):
            if row["reason"] != "blocklisted":
                by_reason.setdefault(row["reason"], []).append(row)
    return {
        reason: sorted(rows, key=lambda r: (r["rank"], r["source"], r["key"]))[:per_reason]
        for reason, rows in sorted(by_reason.items())
    }


def _tokenizer(manifest: dict, tokenizer: Tokenizer | None, report: CurationReport) -> Tokenizer | None:
    """The job's tokenizer when sentence samples need decoding (loaded from the manifest's location)."""
    if tokenizer is not None or not any(r["tokens"] for rows in report.samples.values() for r in rows):
        return tokenizer
    from lvm_data.tokenizer import load  # late: it loads torch, which a report of image samples never needs

    return load(manifest["tokenizer"]["uri"], device="cpu")


def _tile(row: dict, tokenizer: Tokenizer | None) -> Image.Image:
    if row["image"]:
        return Image.fromarray(decode_jpeg(row["image"])).resize((THUMBNAIL, THUMBNAIL))
    if tokenizer is None:
        raise ReportError(f"sample {row['key']}: a sentence sample needs the job's tokenizer to be shown; pass one")
    codes = np.asarray(row["tokens"], dtype=np.int64)
    image = tokenizer.decode(codes.reshape(1, -1))[0]  # (S, S, 3) uint8
    return Image.fromarray(image).resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BILINEAR)


def contact_sheet(
    samples: dict[str, list[dict]], removed: dict[str, int], tokenizer: Tokenizer | None = None
) -> np.ndarray:
    """(rows * (LABEL + THUMBNAIL + CAPTION), columns * THUMBNAIL, 3) uint8: a row of samples per reason."""
    columns = max(len(rows) for rows in samples.values())
    height = LABEL + THUMBNAIL + CAPTION
    canvas = Image.new("RGB", (max(columns, 4) * THUMBNAIL, len(samples) * height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for r, (reason, rows) in enumerate(samples.items()):
        top = r * height
        draw.text((3, top + 2), f"{reason}: {removed.get(reason, len(rows)):,} removed; {len(rows)} shown", fill=TEXT)
        for c, row in enumerate(rows):
            canvas.paste(_tile(row, tokenizer), (c * THUMBNAIL, top + LABEL))
            name = (row["uri"] or row["key"]).rsplit("/", 1)[-1]
            draw.text((c * THUMBNAIL + 2, top + LABEL + THUMBNAIL), name[:15], fill=TEXT)
    return np.asarray(canvas)


def render_markdown(report: CurationReport) -> str:
    lines = ["# lvm-data curation report", "", f"Output: {report.out}", ""]
    if report.index:
        ix, near = report.index, report.index.get("near_duplicates")
        lines += [
            f"Image dedup index: {ix['candidates']:,} candidates from {', '.join(ix['sources'])}; removed "
            + (", ".join(f"{k} {v:,}" for k, v in ix["removed"].items()) or "nothing")
            + (
                f"; near duplicates: {near['hash']} within {near['max_distance']} bits ({near['bands']} bands, "
                f"radius {near['radius']})"
                if near
                else ""
            ),
            "",
        ]
    lines += [
        "| source | inputs | written (ok) | removed (items, clips or sentences) | ledger rows |",
        "|---|---|---|---|---|",
    ]
    for name, s in report.sources.items():
        removed = ", ".join(f"{k} {v:,}" for k, v in s["removed"].items()) or "-"
        ledger = ", ".join(f"{k} {v:,}" for k, v in s["ledger"].items()) or "-"
        lines.append(f"| {name} | {s['inputs']:,} | {s['written']:,} | {removed} | {ledger} |")
    lines += [
        "",
        "A video item that loses some clips still ends ok in the ledger; its clips are counted as removed.",
        "Blocklisted items are counted, never shown.",
        "",
    ]
    if report.sheet is not None:
        lines += ["## Samples of removed items", "", "![contact sheet](contact_sheet.png)", ""]
        for reason, rows in report.samples.items():
            lines += [f"### {reason}", ""] + [_line(r) for r in rows] + [""]
    return "\n".join(lines)


def _line(row: dict) -> str:
    """'- source: detail', naming the removed item when the detail does not start with it."""
    where = row["uri"] or row["key"]
    detail = row["detail"] if row["detail"].startswith(where) else f"{where}: {row['detail']}"
    return f"- {row['source']}: {detail}"


def write_report(
    out: str, dest: str | None = None, tokenizer: Tokenizer | None = None, per_reason: int = 8, max_files: int = 256
) -> list[str]:
    """Write report.md, report.json and (when anything was sampled) contact_sheet.png to `dest`
    (default OUT/curation); returns the files written."""
    report = build_report(out, tokenizer, per_reason, max_files)
    folder = dest or layout.join(out, store.ROOT)
    documents = {
        "report.md": render_markdown(report).encode(),
        "report.json": json.dumps(report.to_dict(), indent=1, sort_keys=True).encode(),
    }
    if report.sheet is not None:
        png = io.BytesIO()
        Image.fromarray(report.sheet).save(png, format="PNG")
        documents["contact_sheet.png"] = png.getvalue()
    written = []
    for name, data in documents.items():
        storage.write_bytes(storage.join(folder, name), data)
        written.append(storage.join(folder, name))
    return written
