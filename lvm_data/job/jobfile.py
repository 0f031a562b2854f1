"""The job file's shape: `JobConfig` and its `SourceConfig`s, frozen dataclasses.

lvm_data.job.config reads a job file into them (with its checks, some in lvm_data.job.validate, which takes
these types); every other module takes them as built there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lvm_data.curation.config import CurationConfig
from lvm_data.items import DEFAULT_MAX_ITEM_BYTES
from lvm_data.media.image import DEFAULT_MAX_PIXELS

DEFAULT_TOKENIZER = "builtin:tiny"
DEFAULT_TEMPLATE = "single"


@dataclass(frozen=True)
class SourceConfig:
    """One `sources:` entry. `input` is the whole input block (format included) as the Source sees it."""

    name: str
    format: str
    input: dict[str, Any]
    template: str = DEFAULT_TEMPLATE
    template_options: dict[str, Any] = field(default_factory=dict)
    filters: tuple[dict[str, Any], ...] = ()  # as written (normalised, hashed); parsed: JobConfig.curation


@dataclass(frozen=True)
class JobConfig:
    """The whole job file; `curation` holds the sources' filters parsed (lvm_data.job.config.parse_job)."""

    name: str
    output: str
    sources: tuple[SourceConfig, ...]
    tokenizer: str = DEFAULT_TOKENIZER
    image_size: int | None = None  # None: the tokenizer's
    resize: str = "squash"
    seed: int = 0
    shard_size: int | str = "auto"  # items per unit (one file each); auto: files of ~256 MB (auto_shard_size)
    batch_size: int | str = "auto"  # images per encoder batch; auto: 256 on a GPU, 32 on a CPU (batch_size_for)
    device: str = "auto"
    dtype: str = "auto"  # bfloat16 on CUDA, float32 elsewhere (exact codes: set float32)
    compile: bool | str = "auto"  # torch.compile the encoder on CUDA workers; a runner setting, not hashed
    decode_workers: int | str = "auto"  # per worker process; auto: the machine's cores / its SDK processes
    decode_pool: str = "auto"  # processes (a crash or hang costs one item) | threads | auto (by encoder device)
    jpeg_draft: bool = False  # large JPEGs decoded at a reduced scale; changes pixels, so hashed when on
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES  # bytes of one file / tar member (file_too_large); hashed if set
    limit: int | None = None  # first N items per source (job file or --limit); changes the output: hashed
    curation: CurationConfig = field(default_factory=CurationConfig, compare=False, repr=False)  # from `filters`

    def source(self, name: str) -> SourceConfig:
        for src in self.sources:
            if src.name == name:
                return src
        raise KeyError(f"job {self.name!r} has no source {name!r}")
