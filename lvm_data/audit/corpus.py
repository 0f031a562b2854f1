"""Checks across files and outputs: tokenizers, duplicate sentence ids and ledger keys, orphan sentences.

They work on the hashes the file scans kept (8 bytes a row) and re-read a string column only for the
few files that hold a finding, to name it exactly.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from lvm_data.audit.hashing import ColumnHashes, confirm_duplicates, contains
from lvm_data.audit.ledger import LedgerScan
from lvm_data.audit.sentences import SentenceScan
from lvm_data.audit.violations import Kind, Violation, examples


@dataclass
class TokenizerRow:
    """Files written with one tokenizer (fingerprint, codebook size, tokens per image)."""

    fingerprint: str
    codebook_size: int
    tokens_per_image: int
    files: int = 0
    sentences: int = 0


def tokenizers(scans: list[SentenceScan], manifests: dict[str, dict]) -> tuple[list[TokenizerRow], list[Violation]]:
    """Tokenizers found in file metadata; more than one, or one the manifest does not name, is a violation.

    `manifests` maps an output root to its (valid) manifest."""
    rows: dict[tuple, TokenizerRow] = {}
    roots: dict[tuple, set[str]] = defaultdict(set)
    for scan in scans:
        if scan.meta.get("tokenizer_fingerprint"):
            key = (
                scan.meta["tokenizer_fingerprint"],
                scan.meta_int("codebook_size"),
                scan.meta_int("tokens_per_image"),
            )
            row = rows.setdefault(key, TokenizerRow(*key))
            row.files += 1
            row.sentences += scan.rows
            roots[key].add(scan.entry.root)
    found = []
    ordered = sorted(rows.values(), key=lambda r: -r.files)
    if len(ordered) > 1:
        described = [
            f"{r.fingerprint[:16]} ({r.codebook_size} codes, {r.tokens_per_image}/image): {r.files} files"
            for r in ordered
        ]
        found.append(
            Violation(
                Kind.TOKENIZER_MISMATCH,
                ", ".join(sorted({s.entry.root for s in scans})),
                f"{len(ordered)} tokenizers: " + "; ".join(described),
                sum(r.files for r in ordered[1:]),
            )
        )
    for root, manifest in manifests.items():
        said = manifest["tokenizer"]
        key = (said["fingerprint"], said["codebook_size"], said["tokens_per_image"])
        others = [r for k, r in rows.items() if root in roots[k] and k != key]
        if others:
            found.append(
                Violation(
                    Kind.MANIFEST_MISMATCH,
                    f"{root}/manifest.json",
                    f"manifest names tokenizer "
                    f"{key[0][:16]} ({key[1]} codes, {key[2]}/image); files say "
                    + ", ".join(
                        f"{r.fingerprint[:16]} ({r.codebook_size} codes, {r.tokens_per_image}/image)" for r in others
                    ),
                )
            )
    return ordered, found


def duplicate_ids(scans: list[SentenceScan]) -> tuple[list[Violation], int]:
    """Sentence ids written more than once, within a file or across files and outputs; bytes re-read."""
    counted = [s for s in scans if s.counted]
    groups, bytes_read = confirm_duplicates(
        ColumnHashes("id", [s.entry.uri for s in counted], [s.id_hashes for s in counted])
    )
    return [
        Violation(
            Kind.DUPLICATE_ID,
            places[0][0],
            f"id {value} is written {len(places)} times: " + examples([f"{uri} row {row}" for uri, row in places]),
            len(places) - 1,
        )
        for value, places in sorted(groups.items())
    ], bytes_read


def duplicate_keys(ledgers: list[LedgerScan]) -> tuple[list[Violation], int]:
    """Input keys with more than one ledger row within a source (of one output); bytes re-read."""
    by_source: dict[tuple[str, str], list[LedgerScan]] = defaultdict(list)
    for scan in ledgers:
        if scan.counted:
            by_source[(scan.entry.root, scan.entry.source)].append(scan)
    found, bytes_read = [], 0
    for (_, source), scans in sorted(by_source.items()):
        groups, n = confirm_duplicates(ColumnHashes("key", [s.entry.uri for s in scans], [s.key_hashes for s in scans]))
        bytes_read += n
        found += [
            Violation(
                Kind.DUPLICATE_KEY,
                places[0][0],
                f"source {source}: key {value!r} has {len(places)} "
                "ledger rows: " + examples([f"{uri} row {row}" for uri, row in places]),
                len(places) - 1,
            )
            for value, places in sorted(groups.items())
        ]
    return found, bytes_read


def orphan_sentences(
    scans: list[SentenceScan], ledgers: list[LedgerScan], name_files: int = 20
) -> tuple[list[Violation], int]:
    """Sentences of one output that none of its ledger rows names; ids are read back for the first
    `name_files` files with orphans, the others are named by row. Needs every ledger file counted."""
    named = np.sort(np.concatenate([s.sentence_hashes for s in ledgers])) if ledgers else np.zeros(0, np.uint64)
    found, bytes_read = [], 0
    for scan in (s for s in scans if s.counted):
        rows = np.flatnonzero(~contains(named, scan.id_hashes))
        if rows.size == 0:
            continue
        names = [f"row {r}" for r in rows[:3].tolist()]
        if len(found) < name_files:
            places, n = ColumnHashes("id", [scan.entry.uri], [scan.id_hashes]).strings_at(rows[:3])
            names, bytes_read = [value for _, _, value in places], bytes_read + n
        found.append(
            Violation(
                Kind.ORPHAN_SENTENCE,
                scan.entry.uri,
                f"sentences no ledger row names: {rows.size} (e.g. {examples(names)})",
                int(rows.size),
            )
        )
    return found, bytes_read
