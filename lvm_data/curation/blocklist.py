"""Blocklists: items whose key, URI or URL matches a pattern, or whose content matches a listed hash,
are never written (reason `blocklisted`), and never shown in a report.

Entries (inline in the job file or in files, one per line, '#' starts a comment):
- patterns: shell globs matched against the whole key, URI or meta `url` (`*` spans '/'), or
  `re:REGEX` searched in them;
- hashes: `sha256:HEX` or `md5:HEX` of the item's main file bytes (checked before decoding),
  `phash:HEX` or `dhash:HEX` (16 hex digits) of its first decoded frame, matched within `max_distance`
  bits. `lvm-data curation-hash FILE...` prints all four for files you want to block.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass, field

import numpy as np

from lvm_data import storage
from lvm_data.curation.hashes import PERCEPTUAL, popcount
from lvm_data.items import ItemRef, Part
from lvm_data.media.contract import DecodeSettings
from lvm_data.media.decode import decode_item

FILE_HASHES = {"sha256": 64, "md5": 32}  # kind -> hex digits
PIXEL_HASHES = tuple(PERCEPTUAL)


@dataclass(frozen=True)
class BlocklistSpec:
    """The job file's `blocklist` options. Matches are never written. patterns: globs (or 're:REGEX') matched
    against the key, the URI and a `url` meta field; hashes: 'sha256:HEX' / 'md5:HEX' of the file bytes,
    'phash:HEX' / 'dhash:HEX' of the decoded image (matched within `max_distance` bits). *_files: one entry per
    line, '#' comments."""

    patterns: tuple[str, ...] = ()
    pattern_files: tuple[str, ...] = ()
    hashes: tuple[str, ...] = ()
    hash_files: tuple[str, ...] = ()
    max_distance: int = 4

    @property
    def files(self) -> tuple[str, ...]:
        """The blocklist files it reads."""
        return self.pattern_files + self.hash_files


class BlocklistError(ValueError):
    """A blocklist entry or file that cannot be used; names the file and line."""


@dataclass
class Blocklist:
    pattern: re.Pattern | None = None
    patterns: int = 0
    files: dict[str, frozenset[str]] = field(default_factory=dict)  # sha256/md5 -> hex digests
    pixels: dict[str, np.ndarray] = field(default_factory=dict)  # phash/dhash -> uint64 hashes
    max_distance: int = 4

    @property
    def needs_bytes(self) -> bool:
        return any(self.files.values())

    def match_names(self, ref: ItemRef) -> str | None:
        """Detail when the key, URI or meta url matches a pattern."""
        if self.pattern is None:
            return None
        for what, text in (("key", ref.key), ("uri", ref.uri), ("url", _url(ref.meta))):
            if text and self.pattern.search(text):
                return f"{what} {text!r} matches a blocklist pattern"
        return None

    def match_bytes(self, data: bytes) -> str | None:
        for kind, digests in self.files.items():
            if digests and hashlib.new(kind, data).hexdigest() in digests:
                return f"file {kind} is blocklisted"
        return None

    def match_pixels(self, pixels: np.ndarray) -> str | None:
        for kind, listed in self.pixels.items():
            if len(listed):
                distance = int(popcount(listed ^ np.uint64(PERCEPTUAL[kind](pixels))).min())
                if distance <= self.max_distance:
                    return f"{kind} within {distance} bits of a blocklisted hash"
        return None


def _url(meta: dict) -> str:
    """A `url` field of the item's meta, at the top level or one level down (webdataset .json)."""
    if isinstance(meta.get("url"), str):
        return meta["url"]
    for value in meta.values():
        if isinstance(value, dict) and isinstance(value.get("url"), str):
            return value["url"]
    return ""


def load_blocklist(spec: BlocklistSpec) -> Blocklist:
    """Read the spec's files and compile its entries. Raises BlocklistError naming the file and line."""
    patterns = [(p, "job file") for p in spec.patterns] + _lines(spec.pattern_files)
    hashes = [(h, "job file") for h in spec.hashes] + _lines(spec.hash_files)
    regexes = []
    for text, where in patterns:
        try:
            regexes.append(text[3:] if text.startswith("re:") else fnmatch.translate(text))
            re.compile(regexes[-1])
        except re.error as err:
            raise BlocklistError(f"{where}: pattern {text!r} is not a valid regular expression ({err})") from err
    files: dict[str, set[str]] = {kind: set() for kind in FILE_HASHES}
    pixels: dict[str, list[int]] = {kind: [] for kind in PIXEL_HASHES}
    for text, where in hashes:
        kind, value = _hash_entry(text, where)
        (files[kind].add(value) if kind in files else pixels[kind].append(int(value, 16)))
    return Blocklist(
        re.compile("|".join(f"(?:{r})" for r in regexes)) if regexes else None,
        len(regexes),
        {k: frozenset(v) for k, v in files.items()},
        {k: np.array(v, dtype=np.uint64) for k, v in pixels.items()},
        spec.max_distance,
    )


def _hash_entry(text: str, where: str) -> tuple[str, str]:
    kind, _, value = text.strip().partition(":")
    kind, value = kind.lower(), value.strip().lower()
    digits = FILE_HASHES.get(kind, 16 if kind in PIXEL_HASHES else None)
    if digits is None:
        raise BlocklistError(
            f"{where}: {text!r} is not KIND:HEX with KIND one of {', '.join([*FILE_HASHES, *PIXEL_HASHES])}"
        )
    if len(value) != digits or not re.fullmatch(r"[0-9a-f]+", value):
        raise BlocklistError(f"{where}: {kind} hash {value!r} must be {digits} hex digits")
    return kind, value


def _lines(uris: tuple[str, ...]) -> list[tuple[str, str]]:
    """(entry, 'FILE:LINE') of every non-empty, non-comment line of the files."""
    out = []
    for uri in uris:
        try:
            text = storage.read_bytes(uri).decode("utf-8")
        except FileNotFoundError as err:
            raise BlocklistError(f"{uri}: blocklist file not found; fix the path in the job file") from err
        except (OSError, UnicodeDecodeError) as err:
            raise BlocklistError(f"{uri}: cannot read the blocklist file ({err})") from err
        for number, line in enumerate(text.splitlines(), 1):
            entry = line.split("#", 1)[0].strip()
            if entry:
                out.append((entry, f"{uri}:{number}"))
    return out


def entries_for(uri: str, image_size: int = 256, resize: str = "squash") -> list[str]:
    """Blocklist `hashes` entries for an image file: sha256 and md5 of its bytes, phash and dhash of the image
    decoded and resized as a job with this image size and resize policy sees it. Raises ItemError."""
    data = storage.read_bytes(uri)
    pixels = decode_item(ItemRef("hash", uri, "", {"image": Part(uri, data)}), DecodeSettings(image_size, resize))
    frame = pixels.frames[0].pixels
    return [f"{kind}:{hashlib.new(kind, data).hexdigest()}" for kind in FILE_HASHES] + [
        f"{kind}:{PERCEPTUAL[kind](frame):016x}" for kind in PIXEL_HASHES
    ]
