"""Do the unit markers, the manifest and the files of one job output tell the same story?

The committed units come from the manifest when it is there and valid (it repeats every marker, so
a terabyte job's thousands of markers need not be fetched one by one); otherwise from the marker
files. Each committed unit's counts are checked for arithmetic (inputs = ok + filtered + failed)
and against what the audit counted in its sentence and ledger files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import cast

from lvm_data.audit.files import READ_ERRORS, Entry, Output, read_json
from lvm_data.audit.ledger import LedgerScan
from lvm_data.audit.sentences import SentenceScan
from lvm_data.audit.violations import Kind, Violation
from lvm_data.shards import layout
from lvm_data.shards.schema import validation_errors

COUNT_KEYS = ("inputs", "ok", "filtered", "failed", "sentences", "images", "tokens")
Key = tuple[str, str]  # (source, unit)


@dataclass
class Commits:
    """Committed units of one output: (source, unit) -> marker record, and which document said so."""

    records: dict[Key, dict] = field(default_factory=dict)
    where: dict[Key, str] = field(default_factory=dict)
    manifest: dict | None = None
    violations: list[Violation] = field(default_factory=list)
    bytes_read: int = 0


def _read(entry: Entry) -> tuple[object, int, str]:
    try:
        document, size = read_json(entry.uri)
        return document, size, ""
    except READ_ERRORS as error:
        return None, 0, f"{type(error).__name__}: {error}"


def load_commits(output: Output, map_: Callable[[Callable, Iterable], Iterable] = map) -> Commits:
    """The manifest and the committed units; `map_` may be a thread pool's map for many marker files."""
    commits = Commits()
    manifest_uri = layout.join(output.root, layout.MANIFEST)
    if output.manifest is None:
        commits.violations.append(
            Violation(
                Kind.MISSING_FILE,
                manifest_uri,
                f"{layout.MANIFEST} missing: the job has not finished (or PATH is not its output folder)",
            )
        )
    else:
        document, commits.bytes_read, error = _read(output.manifest)
        problems = [error] if error else validation_errors("manifest", document)
        kind = Kind.UNREADABLE_FILE if error else Kind.SCHEMA_MISMATCH
        commits.violations += [Violation(kind, manifest_uri, p) for p in problems]
        commits.manifest = None if problems else cast(dict, document)  # the schema makes it an object
    if commits.manifest is not None:
        _from_manifest(output, commits, manifest_uri)
    else:
        for entry, (document, size, error) in zip(
            output.markers.values(), map_(_read, output.markers.values()), strict=True
        ):
            commits.bytes_read += size
            _add_marker(commits, entry, document, error)
    return commits


def _from_manifest(output: Output, commits: Commits, manifest_uri: str) -> None:
    assert commits.manifest is not None, "called only for a valid manifest"
    for record in commits.manifest["units"]:
        key = (record["source"], record["unit"])
        if key in commits.records:
            commits.violations.append(
                Violation(
                    Kind.MANIFEST_MISMATCH,
                    manifest_uri,
                    f"unit {key[1]} of {key[0]} is listed twice in the manifest's units",
                )
            )
        commits.records[key], commits.where[key] = record, manifest_uri
        if key not in output.markers:
            commits.violations.append(
                Violation(
                    Kind.MISSING_FILE,
                    layout.join(output.root, layout.marker_file(*key)),
                    "unit is in the manifest but its marker file is missing",
                )
            )
    for key, entry in output.markers.items():
        if key not in commits.records:
            commits.violations.append(
                Violation(
                    Kind.MANIFEST_MISMATCH, entry.uri, "unit committed but not in the manifest (committed after it?)"
                )
            )


def _add_marker(commits: Commits, entry: Entry, document: object, error: str) -> None:
    problems = [error] if error else validation_errors("unit", document)
    commits.violations += [
        Violation(Kind.UNREADABLE_FILE if error else Kind.SCHEMA_MISMATCH, entry.uri, p) for p in problems
    ]
    if problems:
        return
    document = cast(dict, document)  # the schema makes it an object
    if (document["source"], document["unit"]) != (entry.source, entry.unit):
        commits.violations.append(
            Violation(
                Kind.WRONG_PARTITION,
                entry.uri,
                f"marker names source {document['source']!r} unit {document['unit']!r}; the path disagrees",
            )
        )
    commits.records[(entry.source, entry.unit)] = document
    commits.where[(entry.source, entry.unit)] = entry.uri


def _differences(said: dict, found: dict, what: str) -> list[str]:
    return [f"{k}: {what} says {said.get(k, 'nothing')}, found {found[k]}" for k in found if said.get(k) != found[k]]


def _arithmetic(counts: dict) -> list[str]:
    problems = []
    if counts["inputs"] != counts["ok"] + counts["filtered"] + counts["failed"]:
        problems.append(
            f"inputs {counts['inputs']} != ok {counts['ok']} + filtered {counts['filtered']} "
            f"+ failed {counts['failed']}"
        )
    if sum(counts["reasons"].values()) != counts["inputs"]:
        problems.append(f"reasons sum to {sum(counts['reasons'].values())}, inputs {counts['inputs']}")
    return problems


def check_units(
    output: Output, commits: Commits, sentences: list[SentenceScan], ledgers: list[LedgerScan]
) -> list[Violation]:
    """Each committed unit against its files; every data file against the commits."""
    found: list[Violation] = []
    files, scans = output.by_rel(), {s.entry.rel: s for s in [*sentences, *ledgers]}
    committed: set[str] = set()
    for key, record in sorted(commits.records.items()):
        where = commits.where[key]
        found += [
            Violation(Kind.COUNT_MISMATCH, where, f"unit {key[1]} of {key[0]}: {p}")
            for p in _arithmetic(record["counts"])
        ]
        for field_, size_field in (("sentences_file", "sentences_bytes"), ("ledger_file", "ledger_bytes")):
            rel = record[field_]
            committed.add(rel)
            if rel not in files:
                found.append(Violation(Kind.MISSING_FILE, layout.join(output.root, rel), f"named by {where}"))
                continue
            found += _against_file(record, files[rel], scans.get(rel), size_field, where)
    stray = [e for e in files.values() if e.rel.split("/")[0] in ("sentences", "ledger") and e.rel not in committed]
    found += [Violation(Kind.UNCOMMITTED_FILE, e.uri, "no committed unit names this file") for e in stray]
    return found


def _against_file(
    record: dict, entry: Entry, scan: SentenceScan | LedgerScan | None, size_field: str, where: str
) -> list[Violation]:
    counts, problems = record["counts"], []
    if size_field in record and record[size_field] != entry.size:
        problems.append(f"{size_field}: {where} says {record[size_field]}, the file has {entry.size}")
    if isinstance(scan, SentenceScan) and scan.counted:
        problems += _differences(
            counts, {"sentences": scan.rows, "images": scan.images, "tokens": scan.tokens_written}, "the unit's counts"
        )
    elif isinstance(scan, LedgerScan) and scan.counted:
        problems += _differences(
            counts,
            {
                "inputs": scan.rows,
                "ok": scan.statuses["ok"],
                "filtered": scan.statuses["filtered"],
                "failed": scan.statuses["failed"],
            },
            "the unit's counts",
        )
        if {k: v for k, v in counts["reasons"].items() if v} != dict(scan.reasons):
            problems.append(f"reasons: the unit's counts say {counts['reasons']}, found {dict(scan.reasons)}")
    return [Violation(Kind.COUNT_MISMATCH, entry.uri, p) for p in problems]


def check_manifest(commits: Commits, where: str) -> list[Violation]:
    """Manifest totals = sum of its sources; each source = sum of its units (counts, units, bytes)."""
    manifest = commits.manifest
    if manifest is None:
        return []
    per_source: dict[str, Counter] = {}
    for (source, _), record in commits.records.items():
        sums = per_source.setdefault(source, Counter())
        sums.update({k: record["counts"][k] for k in COUNT_KEYS})
        sums.update(units=1, sentences_bytes=record.get("sentences_bytes", 0))
    problems, unlisted = [], []
    for source in sorted(set(per_source) | set(manifest["sources"])):
        sums = per_source.get(source, Counter())
        found = {k: sums[k] for k in (*COUNT_KEYS, "units", "sentences_bytes")}
        if source not in manifest["sources"]:  # e.g. a source renamed in the job file after a kill
            unlisted.append(
                Violation(
                    Kind.MANIFEST_MISMATCH,
                    where,
                    f"source {source}: {sums['units']} committed "
                    f"units ({sums['inputs']} inputs) that the manifest's sources do not list",
                )
            )
            continue
        problems += [f"source {source}: {p}" for p in _differences(manifest["sources"][source], found, "manifest")]
    totals = sum(per_source.values(), Counter())
    problems += [
        f"totals: {p}" for p in _differences(manifest["totals"], {k: totals[k] for k in COUNT_KEYS}, "manifest")
    ]
    problems += [f"totals: {p}" for p in _arithmetic(manifest["totals"])]
    return unlisted + [Violation(Kind.COUNT_MISMATCH, where, p) for p in problems]
