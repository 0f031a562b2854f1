"""The template contract: decoded items in, visual sentences and per-item outcomes out.

Templates do not know about files or Beam. All randomness comes from `item_rng`/`group_rng`, seeded
by hashing (job seed, key), so output never depends on worker count or scheduling.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lvm_data.items import DecodedItem, Frame, ItemRef
from lvm_data.outcomes import Outcome

DEFAULT_MAX_IMAGES = 16  # LVM's context: 16 images x 256 tokens = 4096 tokens


@dataclass
class Sentence:
    """An ordered list of frames that becomes one row of tokens."""

    source: str
    template: str
    task: str
    frames: list[Frame]
    item_keys: list[str]
    unit: str
    params: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self):
        if not self.id:
            self.id = sentence_id(self.source, self.template, self.item_keys, self.params, self.frames)

    @property
    def n_images(self) -> int:
        return len(self.frames)


ID_BYTES = 12  # 96 bits: a collision among 10^10 sentences has odds ~10^-9; 12 bytes keep single-image files
# <= 1.7 bytes per token (16 would cost 0.016 more). Outputs of versions before hold 32-digit ids: both are valid.


def sentence_id(source: str, template: str, item_keys: list[str], params: dict, frames: list[Frame]) -> str:
    """Content hash (24 hex digits) of what defines a sentence: source, template, item keys, params and frame
    provenance. Item keys are location-free (lvm_data.sources.listing) and each frame enters by `frame_name`,
    index and role, never by its full URI: the same files give the same ids in a local folder, on gs:// or behind
    http:// (the sentence's `frames` column keeps the full URIs)."""
    payload = json.dumps(
        {
            "source": source,
            "template": template,
            "items": list(item_keys),
            "params": params,
            "frames": [[frame_name(f.uri), f.index, f.role] for f in frames],
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.blake2b(payload.encode(), digest_size=ID_BYTES).hexdigest()


def frame_name(uri: str) -> str:
    """A frame's location-free name: its URI's last path segment (the file name; for a tar member or a row, what
    follows the last '/': `000.tar#k.jpg`, `k.jpg` of `000.tar#dir/k.jpg`, `part.parquet#row=3`)."""
    return uri.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class TemplateContext:
    """Job-level settings every template sees."""

    seed: int = 0
    image_size: int = 256
    max_images: int = DEFAULT_MAX_IMAGES


@dataclass
class BuildResult:
    """Sentences built from a group, and an outcome for every item that ends in no sentence."""

    sentences: list[Sentence]
    outcomes: dict[str, Outcome] = field(default_factory=dict)


class Template(ABC):
    """Contract:

    - `group_key(ref) -> str | None`: items with the same key are built together; None means the
      item is built alone (no shuffle needed). Called on small references, before decoding.
    - `build(items) -> BuildResult`: sentences from one group of decoded items. Every item either
      appears in a sentence's `item_keys` or gets an outcome in `BuildResult.outcomes`.
    """

    name: ClassVar[str]

    def __init__(self, options: dict[str, Any] | None = None, context: TemplateContext = TemplateContext()):
        self.options = dict(options or {})
        self.context = context

    def group_key(self, ref: ItemRef) -> str | None:
        return None

    @abstractmethod
    def build(self, items: list[DecodedItem]) -> BuildResult:
        """Sentences from one group of decoded items."""
