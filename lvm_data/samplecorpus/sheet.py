"""The sample's preview: one sentence per source, one row each, so one sheet shows every data type.

Built from the preview library (lvm_data.shards.preview): the same reading, decoding, fingerprint
check and layout as `lvm-data preview`, but one sentence per source instead of the first N overall
(those would all come from the alphabetically first sources). A source's sentence is the longest
of its first CANDIDATES (the first of those on ties): a pairs source then shows a full sentence,
not the short one that ends its group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lvm_data import storage
from lvm_data.progress import Meter, Report, silent
from lvm_data.shards.preview import (
    PreviewError,
    Sheet,
    SheetRow,
    decode_row,
    first_sentences,
    layout_sheet,
    tokenizer_uri,
)

if TYPE_CHECKING:
    from lvm_data.tokenizer.tokenizer import Tokenizer

DEFAULT_CELL = 128  # pixels per image: a 16-image row is 2048 pixels wide
CANDIDATES = 8


def source_rows(
    corpus: str, sources: list[str], tokenizer: Tokenizer, report: Report = silent
) -> tuple[list[SheetRow], list[str]]:
    """(the decoded sentence of each source that has one, in `sources` order; sources without sentences)."""
    rows, empty = [], []
    with Meter("preview", "sources", len(sources), report) as meter:
        for name in sources:
            _add_source_row(corpus, name, tokenizer, rows, empty)
            meter.advance(1, detail=f"images {sum(r.n_images for r in rows)}")
    return rows, empty


def _add_source_row(corpus: str, name: str, tokenizer: Tokenizer, rows: list[SheetRow], empty: list[str]) -> None:
    found, fingerprint = first_sentences(corpus, CANDIDATES, name)
    if not found:
        empty.append(name)
        return
    if fingerprint and fingerprint != tokenizer.fingerprint:
        raise PreviewError(
            f"{corpus}: source {name} was tokenized by fingerprint {fingerprint[:12]}..., not by "
            f"{tokenizer.name} ({tokenizer.fingerprint[:12]}...); pass the job's tokenizer"
        )
    rows.append(decode_row(max(found, key=lambda row: row["n_images"]), tokenizer))


def source_sheet(
    corpus: str,
    sources: list[str],
    cell: int = DEFAULT_CELL,
    tokenizer: Tokenizer | None = None,
    report: Report = silent,
) -> tuple[Sheet, list[str]]:
    """(sheet with one row per source that has sentences, sources without any). `tokenizer`: a loaded
    one, else the one corpus/manifest.json names (loaded on CPU)."""
    if tokenizer is None:
        from lvm_data.tokenizer import load

        tokenizer = load(tokenizer_uri(corpus, None), device="cpu")
    rows, empty = source_rows(corpus, sources, tokenizer, report)
    if not rows:
        raise PreviewError(f"{corpus}: no source has sentences to preview")
    return layout_sheet(rows, cell), empty


def write_source_sheet(
    corpus: str,
    destination: str,
    sources: list[str],
    cell: int = DEFAULT_CELL,
    tokenizer: Tokenizer | None = None,
    report: Report = silent,
) -> tuple[Sheet, list[str]]:
    """`source_sheet`, written as PNG to `destination` (atomically)."""
    sheet, empty = source_sheet(corpus, sources, cell, tokenizer, report)
    storage.write_bytes(destination, sheet.png())
    return sheet, empty
