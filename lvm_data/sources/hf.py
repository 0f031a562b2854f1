"""`hf`: Hugging Face datasets with an image column.

Exactly one of: `path` (a folder written by `save_to_disk`), `imagefolder` (a local folder in the
imagefolder layout), `dataset` (a hub name; needs the hub, so offline it fails with a message that
says how to make a local copy). `split` (default "train") picks the split of a DatasetDict.
Units are row ranges of `shard_size`; keys are `SPLIT/ROW`. Images are read undecoded ({bytes, path})
so decoding, and its failures, happen in our decoder like for every other source.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lvm_data.items import ItemRef
from lvm_data.sources.base import Source, Unit
from lvm_data.sources.listing import SourceError
from lvm_data.sources.parquet import image_ref


class HFDataset(Source):
    format = "hf"

    def __init__(self, name: str, options: dict[str, Any]):
        super().__init__(name, options)
        self._dataset = None

    @property
    def location(self) -> str:
        return self.options.get("path") or self.options.get("imagefolder") or self.options.get("dataset", "")

    @property
    def split(self) -> str:
        return self.options.get("split", "train")

    def __getstate__(self):
        return {**self.__dict__, "_dataset": None}  # workers reopen (memory-mapped, cheap)

    def dataset(self):
        """The split as a `datasets.Dataset` with the image column undecoded."""
        if self._dataset is None:
            self._dataset = self._open()
        return self._dataset

    def _open(self):
        import datasets

        column = self.options.get("column", "image")
        try:
            data = self._load(datasets)
        except (FileNotFoundError, ConnectionError, OSError, ValueError) as err:
            raise SourceError(self._hint(err)) from err
        if isinstance(data, datasets.DatasetDict):
            if self.split not in data:
                raise SourceError(
                    f"source {self.name!r}: {self.location} has splits {', '.join(map(str, data))}, "
                    f"not {self.split!r}; set input.split"
                )
            data = data[self.split]
        if column not in data.column_names:
            raise SourceError(
                f"source {self.name!r}: {self.location} has no column {column!r}; its columns are "
                f"{', '.join(data.column_names)}; set input.column"
            )
        if isinstance(data.features[column], datasets.Image):
            data = data.cast_column(column, datasets.Image(decode=False))
        return data

    def _load(self, datasets):
        cache = self.options.get("cache_dir")
        if "path" in self.options:
            return datasets.load_from_disk(self.options["path"])
        if "imagefolder" in self.options:
            return datasets.load_dataset(
                "imagefolder", data_dir=self.options["imagefolder"], split=self.split, cache_dir=cache
            )
        return datasets.load_dataset(
            self.options["dataset"], self.options.get("config"), split=self.split, cache_dir=cache
        )

    def _hint(self, err: Exception) -> str:
        text = f"source {self.name!r}: cannot open Hugging Face dataset {self.location!r} ({type(err).__name__}: {err})"
        if "dataset" in self.options:
            return (
                f"{text}. The hub is unreachable or the name is wrong. Without network access, on a connected "
                f"machine run `datasets.load_dataset({self.location!r}, split={self.split!r})"
                ".save_to_disk(DIR)`, copy DIR here and use `path: DIR` in the job file"
            )
        return f"{text}; check the folder in the job file"

    def plan(self) -> list[Unit]:
        rows, size = self.dataset().num_rows, int(self.options["shard_size"])
        return [
            Unit(self.name, f"{i // size:06d}", (i, min(i + size, rows)), min(i + size, rows) - i)
            for i in range(0, rows, size)
        ]

    def read(self, unit: Unit) -> Iterator[ItemRef]:
        start, stop = unit.spec
        part = self.dataset().select(range(start, stop))
        column = self.options.get("column", "image")
        meta_columns = self.options.get("meta_columns", [])
        for offset, row in enumerate(part):
            index = start + offset
            yield image_ref(
                self.name,
                unit.id,
                f"{self.split}/{index}",
                f"{self.location}#{self.split}/{index}",
                row[column],
                {c: row[c] for c in meta_columns},
            )
