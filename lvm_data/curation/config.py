"""The job file's per-source `filters:` block as frozen dataclasses (defaults documented in
schemas/job.schema.json, which validates types and ranges first).

Each entry names one filter: `- duplicates` (defaults) or `- bounds: {min_side: 128}`. Item filters run
on every decoded item in the listed order (the first that removes an item gives its reason); the dedup
filters work across the job: every source that lists `duplicates` (or `near_duplicates`, or the sentence
filters) shares one pool, so copies are found within and across sources, with one setting per pool.
Nothing is filtered unless configured.

`parse_curation` parses every source's block once, when the job file is read (lvm_data.job.config), into
the job's `CurationConfig`, checking it; everything downstream takes that typed config. Settings with a
contract of their own live with it: `BlocklistSpec` (blocklist.py) and `MinHashSpec` (minhash.py, the
`near_duplicate_sentences` options).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from lvm_data.curation.banding import Banding
from lvm_data.curation.blocklist import BlocklistError, BlocklistSpec, load_blocklist
from lvm_data.curation.hashes import PERCEPTUAL
from lvm_data.curation.minhash import MinHashSpec

IMAGE_FORMATS = ("images", "webdataset", "parquet", "hf", "paired")  # decoders record the original size
CLIP_FORMATS = ("videos", "frame_folders")  # items made of sampled clips, one image per frame


@dataclass(frozen=True)
class Bounds:
    """Original decoded size: shorter side, area (pixels), long/short side ratio; 0 turns a bound off."""

    min_side: int = 64
    min_area: int = 0
    max_aspect: float = 3.0


@dataclass(frozen=True)
class LowVariance:
    """Near-blank images: luma std below `min_std` (0-255), or a share >= `max_uniform` of pixels within
    4 levels of the median luma (measured on the frame as the tokenizer sees it)."""

    min_std: float = 4.0
    max_uniform: float = 0.95


@dataclass(frozen=True)
class StaticClips:
    """A clip is static when the mean absolute luma change between consecutive sampled frames is below
    `min_motion` (0-255 levels)."""

    min_motion: float = 1.0


@dataclass(frozen=True)
class SceneCuts:
    """A clip spans a cut where consecutive sampled frames score above `threshold` (the smaller of a
    hue/saturation histogram distance and the share of changed pixels, both 0-1). drop: the clip goes;
    split: it is cut there and parts shorter than `min_frames` go."""

    threshold: float = 0.33
    action: str = "drop"
    min_frames: int = 4


@dataclass(frozen=True)
class Duplicates:
    """Exact duplicates: same decoded pixels (the first frame as the tokenizer sees it)."""


@dataclass(frozen=True)
class NearDuplicates:
    """Perceptual-hash near duplicates within `max_distance` bits; bands/radius override the banding."""

    hash: str = "phash"
    max_distance: int = 6
    bands: int | None = None
    radius: int | None = None

    @property
    def banding(self) -> Banding:
        if self.bands is None:
            return Banding.for_distance(self.max_distance)
        return Banding(self.bands, self.radius or 0)


@dataclass(frozen=True)
class DuplicateSentences:
    """Exact duplicate sentences: identical tokens."""


ItemFilter = Bounds | LowVariance | BlocklistSpec | StaticClips | SceneCuts
PooledFilter = Duplicates | NearDuplicates | DuplicateSentences | MinHashSpec

FILTERS: dict[str, type] = {
    "bounds": Bounds,
    "low_variance": LowVariance,
    "blocklist": BlocklistSpec,
    "static_clips": StaticClips,
    "scene_cuts": SceneCuts,
    "duplicates": Duplicates,
    "near_duplicates": NearDuplicates,
    "duplicate_sentences": DuplicateSentences,
    "near_duplicate_sentences": MinHashSpec,
}
ITEM_FILTERS = ("bounds", "low_variance", "blocklist", "static_clips", "scene_cuts")
POOLED = ("duplicates", "near_duplicates", "duplicate_sentences", "near_duplicate_sentences")


class FilterConfigError(ValueError):
    """A filters entry that cannot be used; the message names the field."""


@dataclass(frozen=True)
class SourceFilters:
    """A source's filters: item filters in order, and its memberships in the job-wide dedup pools."""

    items: tuple[ItemFilter, ...] = ()
    pooled: dict[str, PooledFilter] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        """The named filter's settings (an instance of FILTERS[name]), or None when the source does not use it."""
        if name in self.pooled:
            return self.pooled[name]
        return next((f for f in self.items if isinstance(f, FILTERS[name])), None)

    @property
    def indexed(self) -> bool:
        """Whether the job-wide image dedup index decides about this source's items."""
        return "duplicates" in self.pooled or "near_duplicates" in self.pooled

    @property
    def sentences(self) -> bool:
        return "duplicate_sentences" in self.pooled or "near_duplicate_sentences" in self.pooled

    @property
    def any(self) -> bool:
        return bool(self.items or self.pooled)


@dataclass(frozen=True)
class CurationConfig:
    """The job's filters, parsed once (`parse_curation`): every source's SourceFilters, in job order."""

    sources: dict[str, SourceFilters] = field(default_factory=dict)

    def of(self, source: str) -> SourceFilters:
        """The source's filters (empty when it lists none)."""
        try:
            return self.sources[source]
        except KeyError:
            raise KeyError(
                f"no parsed filters for source {source!r}; a JobConfig is built by "
                "lvm_data.job.config.parse_job, which parses them"
            ) from None

    def pool(self, name: str) -> Any:
        """The one setting of a job-wide pool (e.g. near_duplicates), or None when no source uses it."""
        return next((f.pooled[name] for f in self.sources.values() if name in f.pooled), None)

    def members(self, name: str) -> frozenset[str]:
        """The sources in a job-wide pool."""
        return frozenset(n for n, f in self.sources.items() if name in f.pooled)

    def index_sources(self) -> list[str]:
        """Sources whose items the job-wide image dedup index decides about."""
        return [name for name, f in self.sources.items() if f.indexed]

    def sentence_sources(self) -> list[str]:
        """Sources whose sentences take part in token-space dedup (their units are staged, then decided together)."""
        return [name for name, f in self.sources.items() if f.sentences]

    @property
    def any(self) -> bool:
        """Whether any source lists a filter."""
        return any(f.any for f in self.sources.values())


def parse_filters(entries: Sequence[str | dict] | None, where: str = "filters") -> SourceFilters:
    """The `filters:` list -> SourceFilters. Raises FilterConfigError naming `where[i].name.option`."""
    items, pooled = [], {}
    for i, entry in enumerate(entries or ()):
        name, options = _entry(entry, f"{where}[{i}]")
        try:
            value = _build(FILTERS[name], options or {})
        except (TypeError, ValueError) as err:
            raise FilterConfigError(f"{where}[{i}].{name}: {err}") from err
        if name in POOLED:
            if name in pooled:
                raise FilterConfigError(f"{where}[{i}].{name}: listed twice; list each dedup filter once")
            pooled[name] = value
        else:
            items.append(value)
    return SourceFilters(tuple(items), pooled)


def _entry(entry: Any, where: str) -> tuple[str, dict | None]:
    if isinstance(entry, str):
        entry = {entry: None}
    if not isinstance(entry, dict) or len(entry) != 1:
        raise FilterConfigError(
            f"{where}: a filter is one name, or one name with options, e.g. "
            "'- duplicates' or '- bounds: {min_side: 128}'"
        )
    ((name, options),) = entry.items()
    if name not in FILTERS:
        raise FilterConfigError(f"{where}: unknown filter {name!r}; use one of {', '.join(FILTERS)}")
    return name, options


def _build(cls: type, options: dict) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown option {', '.join(unknown)}; allowed: {', '.join(sorted(known)) or 'none'}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    value = cls(**values)  # MinHashSpec checks permutations, bands and threshold itself
    _check(value)
    return value


def _check(value: Any) -> None:
    if isinstance(value, NearDuplicates):
        if value.hash not in PERCEPTUAL:
            raise ValueError(f"hash {value.hash!r} is not one of {', '.join(PERCEPTUAL)}")
        if (value.bands is None) != (value.radius is None):
            raise ValueError("give both bands and radius, or neither (automatic banding)")
        if value.banding.max_distance < value.max_distance:
            raise ValueError(
                f"{value.bands} bands at radius {value.radius} find pairs up to "
                f"{value.banding.max_distance} bits apart, not max_distance {value.max_distance}: "
                "use bands x (radius + 1) > max_distance for exact recall"
            )
    if isinstance(value, SceneCuts) and value.action not in ("drop", "split"):
        raise ValueError(f"action {value.action!r} is not drop or split")


def parse_curation(sources: Sequence[tuple[str, str, Sequence[str | dict]]]) -> tuple[CurationConfig, list[str]]:
    """(name, input format, `filters:` entries) of every source, in job order -> the job's CurationConfig, and
    'sources[i].filters...: problem' for filters that cannot be parsed, cannot run on their source or disagree
    in a pool (a job with problems is refused; its config leaves out the sources whose filters do not parse)."""
    parsed, problems, seen = {}, [], {}
    for i, (name, fmt, entries) in enumerate(sources):
        where = f"sources[{i}].filters"
        try:
            filters = parse_filters(entries, where)
        except FilterConfigError as err:
            problems.append(str(err))
            continue
        parsed[name] = filters
        problems += _format_problems(where, fmt, filters)
        problems += _blocklist_problems(where, filters)
        for pool, value in filters.pooled.items():
            first = seen.setdefault(pool, (name, value))
            if first[1] != value:
                problems.append(
                    f"{where}: {pool} options differ from source {first[0]!r}; a job dedups across "
                    f"its sources with one setting, so give every source the same {pool} options"
                )
    return CurationConfig(parsed), problems


def _format_problems(where: str, fmt: str, parsed: SourceFilters) -> list[str]:
    out = []
    if parsed.get("bounds") is not None and fmt not in IMAGE_FORMATS + ("videos",):
        out.append(
            f"{where}: bounds needs the original image size, which {fmt!r} items do not record; "
            f"use it with {', '.join(IMAGE_FORMATS + ('videos',))}"
        )
    for name in ("static_clips", "scene_cuts"):
        if parsed.get(name) is not None and fmt not in CLIP_FORMATS:
            out.append(f"{where}: {name} works on sampled clips; use it with {' or '.join(CLIP_FORMATS)} sources")
    return out


def _blocklist_problems(where: str, parsed: SourceFilters) -> list[str]:
    spec = parsed.get("blocklist")
    if spec is None:
        return []
    try:
        load_blocklist(spec)
    except BlocklistError as err:
        return [f"{where}.blocklist: {err}"]
    return []
