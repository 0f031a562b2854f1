"""Source formats as job files spell them (`input.format`). Adding a format is one entry in SOURCES."""

from __future__ import annotations

from typing import Any

from lvm_data.sources.base import Source
from lvm_data.sources.files import ImageFiles
from lvm_data.sources.hf import HFDataset
from lvm_data.sources.paired import Paired
from lvm_data.sources.parquet import ParquetImages
from lvm_data.sources.sequences import MultiViews, Sequences
from lvm_data.sources.videos import FrameFolders, VideoFiles
from lvm_data.sources.webdataset import WebDataset

SOURCES: dict[str, type[Source]] = {
    cls.format: cls
    for cls in (
        ImageFiles,
        WebDataset,
        ParquetImages,
        HFDataset,
        VideoFiles,
        FrameFolders,
        Paired,
        Sequences,
        MultiViews,  # issue 4
    )
}


def make_source(name: str, options: dict[str, Any]) -> Source:
    """The Source for `options["format"]`, named `name`, built with the whole input block."""
    fmt = options.get("format")
    if fmt not in SOURCES:
        raise ValueError(f"source {name!r}: input format {fmt!r} is not known; use one of {', '.join(sorted(SOURCES))}")
    return SOURCES[fmt](name, options)
