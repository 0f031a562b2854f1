"""Units of token-space dedup sources, tokenized and waiting for the pool's decision.

Sources that list `duplicate_sentences` / `near_duplicate_sentences` share one decision over every
sentence of the pool (lvm_data.curation.sentence_dedup), so their units cannot commit the moment they are
tokenized. The executor stages them instead: what `finish_unit` needs (expected keys, events, rows,
signatures) goes to one file per unit, OUT/curation/staged/source=NAME/UNIT-DIGESTS.pkl, written
atomically; DIGESTS name the unit's planned inputs and the job configuration, so a listing alone says
which staged files this run can use.
After the tokenizing pipeline the decision pass (pipelines/curation.py `commit_staged`) reads the
signatures, decides, and commits each staged unit with its removals, then deletes its staged file.

A staged file is execution state, not output: readers never see it (it is not under sentences/), it
is pickled (same lvm-data version), and a file written for another configuration or other inputs, or
one that cannot be read, is ignored and its unit redone. A kill loses only the units not yet staged.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field

from lvm_data import storage
from lvm_data.curation.sentence_dedup import SentenceSig
from lvm_data.shards import layout
from lvm_data.shards.ledger import ItemEvent
from lvm_data.shards.writer import SentenceRow

FORMAT = 1
ROOT = "curation/staged"


@dataclass
class StagedUnit:
    source: str
    unit: str
    spec_digest: str
    config_hash: str
    expected: list[str] = field(default_factory=list)
    events: list[ItemEvent] = field(default_factory=list)
    rows: list[SentenceRow] = field(default_factory=list)
    signatures: list[SentenceSig] = field(default_factory=list)
    timings: dict | None = None  # the unit's step timings up to staging (lvm_data.shards.timings)
    format: int = FORMAT


def staged_file(out: str, source: str, unit: str, spec_digest: str, config_hash: str) -> str:
    return layout.join(out, f"{ROOT}/source={source}/{_staged_name(unit, spec_digest, config_hash)}")


def _staged_name(unit: str, spec_digest: str, config_hash: str) -> str:
    return f"{unit}-{spec_digest[:16]}-{config_hash[:16]}.pkl"


def write_staged(out: str, staged: StagedUnit) -> dict:
    """Stage a unit; returns a small record of it (what the executor reports instead of a marker)."""
    uri = staged_file(out, staged.source, staged.unit, staged.spec_digest, staged.config_hash)
    storage.write_bytes(uri, pickle.dumps(staged, pickle.HIGHEST_PROTOCOL))
    return {
        "source": staged.source,
        "unit": staged.unit,
        "staged": True,
        "inputs": len(set(staged.expected)),
        "sentences": len(staged.rows),
    }


def read_staged(out: str, source: str, unit: str, spec_digest: str, config_hash: str) -> StagedUnit | None:
    """The staged unit, or None when there is none for these inputs and this configuration."""
    try:
        staged = pickle.loads(storage.read_bytes(staged_file(out, source, unit, spec_digest, config_hash)))
    except Exception:  # noqa: BLE001 - missing or unreadable (another version, a torn disk): redo the unit
        return None
    if not isinstance(staged, StagedUnit) or getattr(staged, "format", None) != FORMAT:
        return None
    if (staged.spec_digest, staged.config_hash) != (spec_digest, config_hash):
        return None
    return staged


def staged_units(out: str, source: str, digests: dict[str, str], config_hash: str) -> set[str]:
    """Units of `source` (unit -> spec digest) with a staged file for these inputs and this configuration."""
    prefix = layout.join(out, f"{ROOT}/source={source}")
    present = {uri.rsplit("/", 1)[-1] for uri in storage.list_files(prefix)}
    return {unit for unit, spec in digests.items() if _staged_name(unit, spec, config_hash) in present}


def remove_staged(out: str, source: str, unit: str) -> None:
    """Delete every staged file of the unit (this configuration's and stale ones)."""
    prefix = layout.join(out, f"{ROOT}/source={source}")
    for uri in storage.list_files(prefix):
        if uri.endswith(".pkl") and uri.rsplit("/", 1)[-1].rsplit("-", 2)[0] == unit:
            storage.delete(uri)
