"""A contact sheet of decoded sentences: one row per sentence, labelled with source, template and task.

`preview(out, ...)` reads the first `n` sentences of a job output (files in sorted order, rows in
file order; optionally of one source), decodes their tokens with the tokenizer the job recorded in
OUT/manifest.json (or the one given), and lays the images out left to right, a label band above
each row. A tokenizer whose fingerprint differs from the one in the files' metadata is refused:
its codes would decode to something else.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from lvm_data import storage
from lvm_data.progress import Meter, Report, silent
from lvm_data.shards.manifest import read_manifest
from lvm_data.shards.reader import file_metadata, sentence_files

if TYPE_CHECKING:  # lvm_data.tokenizer loads torch, which this module's readers need not
    from lvm_data.tokenizer.tokenizer import Tokenizer

LABEL_HEIGHT = 14
BACKGROUND = (24, 24, 24)
COLUMNS = ["id", "source", "template", "task", "n_images", "tokens"]


class PreviewError(ValueError):
    """The output or tokenizer cannot be previewed; the message says what to pass instead."""


@dataclass
class SheetRow:
    id: str
    source: str
    template: str
    task: str
    n_images: int
    images: np.ndarray = field(repr=False)  # (n_images, S, S, 3) uint8, decoded

    @property
    def label(self) -> str:
        return f"{self.source} / {self.template} / {self.task}  ({self.n_images} images, {self.id[:8]})"


@dataclass
class Sheet:
    rows: list[SheetRow]
    cell: int
    pixels: np.ndarray = field(repr=False)  # (rows * (LABEL_HEIGHT + cell), columns * cell, 3) uint8

    def cell_box(self, row: int, column: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) of one image on the sheet."""
        top = row * (LABEL_HEIGHT + self.cell) + LABEL_HEIGHT
        return top, column * self.cell, top + self.cell, (column + 1) * self.cell

    def png(self) -> bytes:
        out = io.BytesIO()
        Image.fromarray(self.pixels).save(out, format="PNG")
        return out.getvalue()


def first_sentences(out: str, n: int, source: str | None = None) -> tuple[list[dict], str | None]:
    """Up to `n` sentence rows (id, source, template, task, n_images, tokens) and the files' tokenizer fingerprint."""
    rows, fingerprint = [], None
    for uri in sentence_files(out, source):
        fingerprint = fingerprint or file_metadata(uri).get("tokenizer_fingerprint")
        fs, path = storage.filesystem(uri)
        with fs.open_input_file(path) as f:
            parquet = pq.ParquetFile(f)
            for group in range(parquet.num_row_groups):
                rows += parquet.read_row_group(group, columns=COLUMNS).to_pylist()[: n - len(rows)]
                if len(rows) >= n:
                    return rows, fingerprint
    return rows, fingerprint


def tokenizer_uri(out: str, given: str | None) -> str:
    if given:
        return given
    manifest = read_manifest(out)
    if manifest is None:
        raise PreviewError(f"{out}: no manifest.json (the job has not finished); pass --tokenizer URI")
    return manifest["tokenizer"]["uri"]


def preview(
    out: str,
    n: int = 8,
    *,
    tokenizer: Tokenizer | None = None,
    uri: str | None = None,
    source: str | None = None,
    cell: int | None = None,
    report: Report = silent,
) -> Sheet:
    """The sheet of the first `n` sentences. `tokenizer` (a loaded one) wins over the location `uri`.
    `report` gets the progress of decoding (lvm_data.progress)."""
    rows, fingerprint = first_sentences(out, n, source)
    if not rows:
        raise PreviewError(f"{out}: no sentence files{f' for source {source!r}' if source else ''}")
    if tokenizer is None:
        from lvm_data.tokenizer import load

        tokenizer = load(tokenizer_uri(out, uri), device="cpu")
    if fingerprint and fingerprint != tokenizer.fingerprint:
        raise PreviewError(
            f"{out} was tokenized by a tokenizer with fingerprint {fingerprint[:12]}..., but "
            f"{tokenizer.name} has {tokenizer.fingerprint[:12]}...; pass the job's tokenizer"
        )
    decoded = []
    with Meter("preview", "sentences", len(rows), report) as meter:
        for row in rows:
            decoded.append(decode_row(row, tokenizer))
            meter.advance(1, detail=f"images {sum(r.n_images for r in decoded)}")
    return layout_sheet(decoded, cell or tokenizer.image_size)


def decode_row(row: dict, tokenizer: Tokenizer) -> SheetRow:
    tokens = np.asarray(row["tokens"], dtype=np.int64)
    if tokens.size != row["n_images"] * tokenizer.tokens_per_image:
        raise PreviewError(
            f"sentence {row['id']}: {tokens.size} tokens for {row['n_images']} images of "
            f"{tokenizer.tokens_per_image} tokens; is this the job's tokenizer?"
        )
    images = tokenizer.decode(tokens.reshape(row["n_images"], tokenizer.tokens_per_image))
    return SheetRow(row["id"], row["source"], row["template"], row["task"], row["n_images"], images)


def layout_sheet(rows: list[SheetRow], cell: int) -> Sheet:
    """One row per sentence: a label band, then its images left to right at `cell` pixels."""
    columns = max(r.n_images for r in rows)
    canvas = Image.new("RGB", (columns * cell, len(rows) * (LABEL_HEIGHT + cell)), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    sheet = Sheet(rows, cell, np.zeros(0, np.uint8))
    for r, row in enumerate(rows):
        top = r * (LABEL_HEIGHT + cell)
        draw.text((3, top + 1), row.label, fill=(235, 235, 235))
        for c, image in enumerate(row.images):
            tile = Image.fromarray(image)
            if tile.size != (cell, cell):
                tile = tile.resize((cell, cell), Image.Resampling.BICUBIC)
            y0, x0, _, _ = sheet.cell_box(r, c)
            canvas.paste(tile, (x0, y0))
    sheet.pixels = np.asarray(canvas)
    return sheet


def write_preview(out: str, destination: str, n: int = 8, **options) -> Sheet:
    """Build the sheet and write it as PNG to `destination` (local or gs://)."""
    sheet = preview(out, n, **options)
    storage.write_bytes(destination, sheet.png())
    return sheet
