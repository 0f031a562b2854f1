"""`parquet`: Parquet files with an image column (local or gs://).

The column (option `column`, default "image") holds the encoded image as binary, as a struct
{bytes, path} the way Hugging Face datasets writes images, or as a string path to an image file.
Units are row ranges of `shard_size` rows within one file, planned from the footers alone. Keys
come from `key_column` when given, else `FILE#ROW`. `meta_columns` are copied into item meta.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from lvm_data import storage
from lvm_data.items import ItemRef, Part
from lvm_data.outcomes import Reason
from lvm_data.sources.base import Source, Unit
from lvm_data.sources.listing import SourceError, expand_paths, failed_ref


def open_parquet(uri: str) -> pq.ParquetFile:
    fs, path = storage.filesystem(uri)
    return pq.ParquetFile(fs.open_input_file(path))


class ParquetImages(Source):
    format = "parquet"

    @property
    def column(self) -> str:
        return self.options.get("column", "image")

    def plan(self) -> list[Unit]:
        size = int(self.options["shard_size"])
        units = []
        for index, uri in enumerate(expand_paths(self.name, self.options["paths"], ("parquet",))):
            try:
                meta = open_parquet(uri).metadata
            except (OSError, pa.ArrowInvalid) as err:
                raise SourceError(f"source {self.name!r}: {uri} is not a readable Parquet file ({err})") from err
            self._check_columns(uri, meta.schema.to_arrow_schema().names)
            for start in range(0, meta.num_rows, size):
                stop = min(start + size, meta.num_rows)
                units.append(Unit(self.name, f"{index:05d}-{start // size:05d}", (uri, start, stop), stop - start))
        return units

    def _check_columns(self, uri: str, names: list[str]) -> None:
        wanted = [self.column, *([self.options["key_column"]] if "key_column" in self.options else []),
                  *self.options.get("meta_columns", [])]
        missing = [c for c in wanted if c not in names]
        if missing:
            raise SourceError(f"source {self.name!r}: {uri} has no column {', '.join(map(repr, missing))}; "
                              f"its columns are {', '.join(names)}; set input.column / key_column / meta_columns")

    def read(self, unit: Unit) -> Iterator[ItemRef]:
        uri, start, stop = unit.spec
        table = self._rows(uri, start, stop)
        keys = table[self.options["key_column"]].to_pylist() if "key_column" in self.options else None
        meta_cols = {c: table[c].to_pylist() for c in self.options.get("meta_columns", [])}
        seen: dict[str, int] = {}
        for i, value in enumerate(table[self.column].to_pylist()):
            row = start + i
            key = str(keys[i]) if keys is not None else f"{uri}#{row}"
            if key in seen:  # two inputs must never share one ledger row
                yield failed_ref(self.name, f"{key}#row={row}", unit.id, f"{uri}#row={row}", Reason.READ_ERROR,
                                 f"{uri}#row={row}: key {key!r} repeats row {seen[key]}; key_column must be unique")
                continue
            seen[key] = row
            yield image_ref(self.name, unit.id, key, f"{uri}#row={row}", value,
                            {c: v[i] for c, v in meta_cols.items()})

    def _rows(self, uri: str, start: int, stop: int) -> pa.Table:
        """Rows [start, stop) reading only the row groups that hold them."""
        file = open_parquet(uri)
        columns = [self.column, *([self.options["key_column"]] if "key_column" in self.options else []),
                   *self.options.get("meta_columns", [])]
        groups, first, offset = [], None, 0
        for g in range(file.metadata.num_row_groups):
            n = file.metadata.row_group(g).num_rows
            if offset < stop and offset + n > start:
                groups.append(g)
                first = offset if first is None else first
            offset += n
        table = file.read_row_groups(groups, columns=columns) if groups else file.schema_arrow.empty_table()
        return table.slice(start - (first or 0), stop - start)


def image_ref(source: str, unit: str, key: str, where: str, value, meta: dict) -> ItemRef:
    """An item from an image cell: bytes, {bytes, path} (Hugging Face), or a path string."""
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
    elif isinstance(value, str):
        data, path = None, value
    else:
        data, path = value, None
    if data is not None:
        meta = {**meta, "path": path} if path else meta
        return ItemRef(source, key, unit, {"image": Part(where, data=bytes(data))}, meta)
    if path:
        return ItemRef(source, key, unit, {"image": Part(path)}, meta)
    return failed_ref(source, key, unit, where, Reason.EMPTY_FILE, f"{where}: the image cell is empty (null)")
