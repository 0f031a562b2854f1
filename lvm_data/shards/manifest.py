"""The run manifest (OUT/manifest.json): written last by the driver from the unit markers.

It holds the job (name, config hash, the output-relevant config), the tokenizer, the runner, start
and finish times, totals over everything committed in OUT and per source, every unit marker, and the
markers' time per step summed (lvm_data.shards.timings).
"""

from __future__ import annotations

import json
from collections import Counter

from lvm_data import storage
from lvm_data.shards import layout
from lvm_data.shards.schema import schema_version, validation_errors
from lvm_data.shards.timings import timings_total

COUNT_FIELDS = ("inputs", "ok", "filtered", "failed", "sentences", "images", "tokens")


class ManifestError(RuntimeError):
    pass


def sum_counts(markers: list[dict]) -> dict:
    """The unit schema's counts summed over markers (reasons, and curation removals, summed per code)."""
    total = {name: 0 for name in COUNT_FIELDS}
    reasons: Counter = Counter()
    removed: Counter | None = None
    for marker in markers:
        for name in COUNT_FIELDS:
            total[name] += int(marker["counts"][name])
        reasons.update(marker["counts"]["reasons"])
        if "curation" in marker["counts"]:  # units of sources with filters
            removed = (removed or Counter()) + Counter(marker["counts"]["curation"]["removed"])
    total = {**total, "reasons": dict(sorted(reasons.items()))}
    return total if removed is None else {**total, "curation": {"removed": dict(sorted(removed.items()))}}


def source_totals(markers: list[dict], sources: list[str]) -> dict[str, dict]:
    """Per-source counts plus units committed and sentence bytes on disk, for every source named."""
    out = {}
    for name in sources:
        mine = [m for m in markers if m["source"] == name]
        out[name] = {
            **sum_counts(mine),
            "units": len(mine),
            "sentences_bytes": int(sum(m.get("sentences_bytes", 0) for m in mine)),
        }
    return out


def build_manifest(
    *, job: dict, tokenizer: dict, runner: str, started: str, finished: str, markers: list[dict], sources: list[str]
) -> dict:
    """The manifest document; `job` = {"name", "config_hash", "config"}, `tokenizer` per the schema."""
    manifest = {
        "schema_version": schema_version("manifest"),
        "job": job,
        "tokenizer": tokenizer,
        "runner": runner,
        "started": started,
        "finished": finished,
        "totals": sum_counts(markers),
        "sources": source_totals(markers, sources),
        "units": markers,
    }
    timings = timings_total(markers)
    return manifest if timings is None else {**manifest, "timings": timings}


def write_manifest(out: str, manifest: dict) -> None:
    """Check against schemas/manifest.schema.json and write atomically."""
    errors = validation_errors("manifest", manifest)
    if errors:
        raise ManifestError(
            f"{layout.join(out, layout.MANIFEST)}: manifest does not match "
            f"schemas/manifest.schema.json: {'; '.join(errors[:5])}"
        )
    storage.write_bytes(layout.join(out, layout.MANIFEST), json.dumps(manifest, indent=1, sort_keys=True).encode())


def read_manifest(out: str) -> dict | None:
    try:
        return json.loads(storage.read_bytes(layout.join(out, layout.MANIFEST)))
    except FileNotFoundError:
        return None


def format_totals(manifest: dict) -> str:
    """A small table of per-source totals for people."""
    lines = [
        f"{'source':<20} {'inputs':>9} {'ok':>9} {'filtered':>9} {'failed':>9} {'sentences':>10} "
        f"{'tokens':>12} {'MB':>8}"
    ]
    for name, t in manifest["sources"].items():
        lines.append(
            f"{name:<20} {t['inputs']:>9} {t['ok']:>9} {t['filtered']:>9} {t['failed']:>9} "
            f"{t['sentences']:>10} {t['tokens']:>12} {t['sentences_bytes'] / 1e6:>8.2f}"
        )
        bad = {r: n for r, n in t["reasons"].items() if r != "ok"}
        if bad:
            lines.append("    " + ", ".join(f"{r}={n}" for r, n in sorted(bad.items())))
        removed = t.get("curation", {}).get("removed")
        if removed:
            lines.append(
                "    curation removed (items, clips or sentences): "
                + ", ".join(f"{r}={n}" for r, n in sorted(removed.items()))
            )
    return "\n".join(lines)
