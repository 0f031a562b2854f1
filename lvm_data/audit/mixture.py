"""`--target MIX.yaml`: compare the token share of each source with a target mixture.

A target file (see targets/uvdv1.yaml) lists entries with a `share` and glob patterns of `sources`;
shares are normalised to sum to 1. Each source counts for the first entry that matches it. The
comparison says per entry: on plan, over or under (beyond a relative `tolerance`), missing (no
tokens) or unplanned (tokens no entry asked for), and the sampling weight target / actual that
would bring the entry to its target.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from importlib import resources

import yaml

from lvm_data import storage

DEFAULT_TOLERANCE = 0.1


class TargetError(ValueError):
    """A target mixture file that cannot be used; the message names the file and field."""


@dataclass(frozen=True)
class TargetEntry:
    name: str
    share: float  # normalised: all entries sum to 1
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class Target:
    name: str
    location: str
    entries: tuple[TargetEntry, ...]
    tolerance: float = DEFAULT_TOLERANCE


def bundled_targets() -> list[str]:
    """Names of the target files shipped with lvm-data (usable as `--target NAME`)."""
    folder = resources.files("lvm_data.audit") / "targets"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_target(location: str) -> Target:
    """A target from a YAML file (local or gs://) or the name of a bundled one ('uvdv1')."""
    if location in bundled_targets():
        text = (resources.files("lvm_data.audit") / "targets" / f"{location}.yaml").read_text()
    else:
        try:
            text = storage.read_bytes(location).decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise TargetError(
                f"{location}: cannot read the target mixture ({error}); give a YAML file or one "
                f"of {', '.join(bundled_targets())}"
            ) from error
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise TargetError(f"{location}: not valid YAML: {error}") from error
    return parse_target(document, location)


def parse_target(document: object, location: str) -> Target:
    if not isinstance(document, dict) or not isinstance(document.get("shares"), dict) or not document["shares"]:
        raise TargetError(f"{location}: needs a mapping `shares:` of entry name -> share (or -> {{share, sources}})")
    raw = []
    for name, spec in document["shares"].items():
        spec = spec if isinstance(spec, dict) else {"share": spec}
        share, patterns = spec.get("share"), spec.get("sources", [str(name)])
        if isinstance(share, bool) or not isinstance(share, int | float) or share < 0:
            raise TargetError(f"{location}: shares.{name}.share must be a number >= 0, got {share!r}")
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise TargetError(f"{location}: shares.{name}.sources must be a list of source name patterns")
        raw.append((str(name), float(share), tuple(patterns)))
    total = sum(share for _, share, _ in raw)
    if total <= 0:
        raise TargetError(f"{location}: the shares sum to 0")
    tolerance = document.get("tolerance", DEFAULT_TOLERANCE)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance < 1:
        raise TargetError(f"{location}: tolerance must be a number in [0, 1), got {tolerance!r}")
    return Target(
        str(document.get("name", location)),
        location,
        tuple(TargetEntry(n, s / total, p) for n, s, p in raw),
        float(tolerance),
    )


@dataclass
class MixtureRow:
    name: str
    sources: list[str]
    target: float
    actual: float
    tokens: int
    status: str  # on plan | over | under | missing | unplanned
    weight: float | None  # target / actual: the sampling weight that would hit the target

    def to_dict(self) -> dict:
        return dict(vars(self))


def compare(target: Target, tokens_by_source: dict[str, int]) -> list[MixtureRow]:
    """One row per target entry, then one per source no entry matches."""
    total = sum(tokens_by_source.values())
    assigned: dict[str, list[str]] = {e.name: [] for e in target.entries}
    unplanned = []
    for source in sorted(tokens_by_source):
        entry = next((e for e in target.entries if any(fnmatch.fnmatchcase(source, p) for p in e.patterns)), None)
        (assigned[entry.name] if entry else unplanned).append(source)
    rows = []
    for entry in target.entries:
        tokens = sum(tokens_by_source[s] for s in assigned[entry.name])
        rows.append(_row(entry.name, assigned[entry.name], entry.share, tokens, total, target.tolerance))
    rows += [_row(s, [s], 0.0, tokens_by_source[s], total, target.tolerance) for s in unplanned]
    return rows


def _row(name: str, sources: list[str], target: float, tokens: int, total: int, tolerance: float) -> MixtureRow:
    actual = tokens / total if total else 0.0
    if target == 0:
        status = "unplanned" if tokens else "on plan"
    elif tokens == 0:
        status = "missing"
    elif actual > target * (1 + tolerance):
        status = "over"
    elif actual < target * (1 - tolerance):
        status = "under"
    else:
        status = "on plan"
    return MixtureRow(name, sources, target, actual, tokens, status, target / actual if actual else None)
