"""`parquet`: Parquet files with an image column (local or gs://).

The column (option `column`, default "image") holds the encoded image as binary, as a struct
{bytes, path} the way Hugging Face datasets writes images, or as a string path to an image file.
Units are row ranges of `shard_size` rows within one file, planned from the footers alone (files in key
order). Keys come from `key_column` when given, else `FILE#ROW` with FILE the file's path relative to the root
of its `paths` entry (lvm_data.sources.listing: `part-0.parquet#12`), so they do not depend on where the files
are stored. `meta_columns` are copied into item meta.

img2dataset's parquet output (`layout: img2dataset`, detected by default in a file with a `status`
column beside a jpg/png/webp column) reads as img2dataset writes it: the image from that column,
keys from `key`, `caption` and `url` as item meta, and a row whose status is not "success" (a null
image with an `error_message`) a `download_failed` item with the message as detail. Explicit
`column`, `key_column` and `meta_columns` still win.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from lvm_data import storage
from lvm_data.items import ItemRef, Part
from lvm_data.outcomes import Reason
from lvm_data.sources.base import Source, Unit
from lvm_data.sources.listing import FileEntry, SourceError, expand_inputs, failed_ref

IMG2DATASET_IMAGES = ("jpg", "png", "webp")  # img2dataset names the column after its encode_format
IMG2DATASET_META = ("caption", "url")
LAYOUTS = ("auto", "img2dataset", "plain")


def open_parquet(uri: str) -> pq.ParquetFile:
    return pq.ParquetFile(storage.open_input(uri))  # storage: a percent-escaped local name opens too


@dataclass(frozen=True)
class Columns:
    """The columns one file is read with. `status`/`error` are img2dataset's, None in a plain table."""

    image: str
    key: str | None
    meta: tuple[str, ...]
    status: str | None = None
    error: str | None = None

    @property
    def names(self) -> list[str]:
        extra = [c for c in (self.key, self.status, self.error) if c is not None]
        return list(dict.fromkeys([self.image, *extra, *self.meta]))


def resolve_columns(options: dict, names: list[str]) -> Columns:
    """The columns to read from a file with columns `names`, given the source's options."""
    layout = options.get("layout", "auto")
    if layout not in LAYOUTS:
        raise SourceError(f"input.layout: {layout!r} is not a parquet layout; use one of {', '.join(LAYOUTS)}")
    if layout == "plain" or (layout == "auto" and not looks_like_img2dataset(options, names)):
        return Columns(
            options.get("column", "image"), options.get("key_column"), tuple(options.get("meta_columns", []))
        )
    image = options.get("column") or next((c for c in IMG2DATASET_IMAGES if c in names), IMG2DATASET_IMAGES[0])
    key = options.get("key_column", "key" if "key" in names else None)
    meta = options["meta_columns"] if "meta_columns" in options else [c for c in IMG2DATASET_META if c in names]
    return Columns(image, key, tuple(meta), "status", "error_message" if "error_message" in names else None)


def looks_like_img2dataset(options: dict, names: list[str]) -> bool:
    """A `status` column beside a jpg/png/webp column, and no default "image" column to read instead."""
    return (
        "status" in names
        and any(c in names for c in IMG2DATASET_IMAGES)
        and ("column" in options or "image" not in names)
    )


class ParquetImages(Source):
    format = "parquet"

    def plan(self) -> list[Unit]:
        size = int(self.options["shard_size"])
        units = []
        files = expand_inputs(self.name, self.options["paths"], ("parquet",))
        for index, (uri, file_key) in enumerate((e.uri, e.key) for e in files.entries() if isinstance(e, FileEntry)):
            try:
                meta = open_parquet(uri).metadata
            except (OSError, pa.ArrowInvalid) as err:
                raise SourceError(f"source {self.name!r}: {uri} is not a readable Parquet file ({err})") from err
            self._check_columns(uri, meta.schema.to_arrow_schema().names)
            for start in range(0, meta.num_rows, size):
                stop = min(start + size, meta.num_rows)
                units.append(
                    Unit(self.name, f"{index:05d}-{start // size:05d}", (uri, start, stop, file_key), stop - start)
                )
        return units

    def _check_columns(self, uri: str, names: list[str]) -> None:
        try:
            wanted = resolve_columns(self.options, names).names
        except SourceError as err:
            raise SourceError(f"source {self.name!r}: {err}") from None
        missing = [c for c in wanted if c not in names]
        if not missing:
            return
        hint = "set input.column / key_column / meta_columns"
        if "status" in names and not any(c in names for c in (*IMG2DATASET_IMAGES, "image")):
            hint = (
                "this looks like the metadata img2dataset writes beside webdataset tars (no image column): "
                "read the .tar files with format: webdataset, or " + hint
            )
        raise SourceError(
            f"source {self.name!r}: {uri} has no column {', '.join(map(repr, missing))}; "
            f"its columns are {', '.join(names)}; {hint}"
        )

    def files(self, unit: Unit) -> list[str]:
        """The Parquet file the row range is in."""
        return [unit.spec[0]]

    def read(self, unit: Unit) -> Iterator[ItemRef]:
        uri, start, stop = unit.spec[:3]
        file_key = unit.spec[3] if len(unit.spec) > 3 else uri  # a spec from before keys were relative: the URI
        table, cols = self._rows(uri, start, stop)
        column = {c: table[c].to_pylist() for c in cols.names}
        none = [None] * table.num_rows
        keys, statuses, errors = (column[c] if c else none for c in (cols.key, cols.status, cols.error))
        seen: dict[str, int] = {}
        for i, value in enumerate(column[cols.image]):
            row, where = start + i, f"{uri}#row={start + i}"
            key = str(keys[i]) if cols.key is not None else f"{file_key}#{row}"
            if key in seen:  # two inputs must never share one ledger row
                yield failed_ref(
                    self.name,
                    f"{key}#row={row}",
                    unit.id,
                    where,
                    Reason.READ_ERROR,
                    f"{where}: key {key!r} repeats row {seen[key]}; key_column must be unique",
                )
                continue
            seen[key] = row
            failure = download_failure(statuses[i], errors[i], value)
            if failure is not None:
                yield failed_ref(self.name, key, unit.id, where, Reason.DOWNLOAD_FAILED, f"{where}: {failure}")
                continue
            yield image_ref(self.name, unit.id, key, where, value, {c: column[c][i] for c in cols.meta})

    def _rows(self, uri: str, start: int, stop: int) -> tuple[pa.Table, Columns]:
        """Rows [start, stop) reading only the row groups that hold them, and the columns they were read with."""
        file = open_parquet(uri)
        cols = resolve_columns(self.options, file.schema_arrow.names)
        groups, first, offset = [], None, 0
        for g in range(file.metadata.num_row_groups):
            n = file.metadata.row_group(g).num_rows
            if offset < stop and offset + n > start:
                groups.append(g)
                first = offset if first is None else first
            offset += n
        table = file.read_row_groups(groups, columns=cols.names) if groups else file.schema_arrow.empty_table()
        return table.slice(start - (first or 0), stop - start), cols


def download_failure(status: str | None, error: str | None, value) -> str | None:
    """What img2dataset recorded for a row it could not fetch or resize, None for a row to decode."""
    if status is not None and status != "success":
        return f"img2dataset status {status!r}: {error or 'no error_message'}"
    if value is None and error:
        return f"img2dataset error_message: {error}"
    return None


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
