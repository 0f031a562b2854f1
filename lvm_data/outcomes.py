"""What happened to one input item: a typed outcome with a stable reason code.

Every input ends as exactly one ledger row built from one `Outcome`. Reason codes are part of the
ledger schema (schemas/ledger.schema.json); tests and counters use them, never display strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    FILTERED = "filtered"
    FAILED = "failed"


class Reason(StrEnum):
    OK = "ok"
    # failed: the input could not be turned into frames
    READ_ERROR = "read_error"  # the bytes could not be read (missing file, permission, I/O)
    LINK_OUTSIDE_ROOT = "link_outside_root"  # a link in an input folder (or tar) pointing outside it
    BROKEN_LINK = "broken_link"  # a link whose target is missing, a loop, or not a regular file
    EMPTY_FILE = "empty_file"  # zero bytes
    DOWNLOAD_FAILED = "download_failed"  # the dataset says its downloader failed on it (img2dataset)
    NOT_MEDIA = "not_media"  # bytes are not an image/video format we know
    DECODE_ERROR = "decode_error"  # a known format that fails to decode
    TRUNCATED = "truncated"  # the file ends early
    TOO_LARGE = "too_large"  # dimensions beyond the decompression-bomb limit (max_pixels, from the header)
    FILE_TOO_LARGE = "file_too_large"  # more bytes than max_item_bytes (from the file size or tar header, unread)
    OUT_OF_MEMORY = "out_of_memory"  # the decoder could not get the memory the item needs (MemoryError)
    TIMEOUT = "timeout"  # the decoder did not finish in time
    DECODER_CRASH = "decoder_crash"  # the decoder process died (segfault)
    TOO_SHORT = "too_short"  # a video or sequence shorter than one clip
    UNPAIRED = "unpaired"  # an annotation or image without its partner
    BAD_ANNOTATION = "bad_annotation"  # an annotation that cannot be rendered
    TOKENIZE_ERROR = "tokenize_error"  # the encoder failed on this item's frames
    INTERNAL_ERROR = "internal_error"  # a bug: the detail holds the exception
    # filtered: readable, deliberately not written
    TOO_SMALL = "too_small"
    BAD_ASPECT = "bad_aspect"
    LOW_VARIANCE = "low_variance"
    DUPLICATE = "duplicate"
    NEAR_DUPLICATE = "near_duplicate"
    BLOCKLISTED = "blocklisted"
    STATIC_CLIP = "static_clip"
    SCENE_CUT = "scene_cut"
    DUPLICATE_SENTENCE = "duplicate_sentence"
    NEAR_DUPLICATE_SENTENCE = "near_duplicate_sentence"
    LEFTOVER = "leftover"  # too few items left to fill a grouped sentence


ITEM_FILTER_REASONS = frozenset(
    {
        Reason.TOO_SMALL,
        Reason.BAD_ASPECT,
        Reason.LOW_VARIANCE,
        Reason.DUPLICATE,
        Reason.NEAR_DUPLICATE,
        Reason.BLOCKLISTED,
        Reason.STATIC_CLIP,
        Reason.SCENE_CUT,
    }
)  # what the filters remove item by item (lvm_data.curation.stage)
SENTENCE_FILTER_REASONS = frozenset({Reason.DUPLICATE_SENTENCE, Reason.NEAR_DUPLICATE_SENTENCE})  # token space
FILTER_REASONS = ITEM_FILTER_REASONS | SENTENCE_FILTER_REASONS | {Reason.LEFTOVER}


def status_of(reason: Reason) -> Status:
    """The status every ledger row with this reason has."""
    if reason is Reason.OK:
        return Status.OK
    return Status.FILTERED if reason in FILTER_REASONS else Status.FAILED


@dataclass(frozen=True)
class Outcome:
    status: Status
    reason: Reason
    detail: str = ""

    @classmethod
    def ok(cls) -> Outcome:
        return cls(Status.OK, Reason.OK)

    @classmethod
    def failed(cls, reason: Reason, detail: str = "") -> Outcome:
        return cls(Status.FAILED, reason, detail)

    @classmethod
    def filtered(cls, reason: Reason, detail: str = "") -> Outcome:
        return cls(Status.FILTERED, reason, detail)

    @property
    def is_ok(self) -> bool:
        return self.status is Status.OK


class ItemError(Exception):
    """Raised inside per-item code; the item boundary turns it into a failed `Outcome`."""

    def __init__(self, reason: Reason, detail: str = ""):
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail

    def outcome(self) -> Outcome:
        return Outcome.failed(self.reason, self.detail)
