"""`images`: still-image files from local folders, globs and gs:// prefixes.

Units are consecutive runs of `shard_size` files in key order; an item's key is its path relative to the
root of the `paths` entry that found it (lvm_data.sources.listing: `a/1.jpg` for data/photos/a/1.jpg under the
entry data/photos), its URI the full location.
Folders keep files with image extensions (jpg, jpeg, png, webp, bmp, tif, tiff, gif unless the
`extensions` option says otherwise); glob patterns keep every match, so a non-image file a glob
names becomes a ledger row (`not_media`) rather than being skipped.

Local folders and globs (lvm_data.localfs): a name that is not UTF-8 is keyed percent-escaped
(b"bad\xff.png" -> "bad%FF.png") and still read; a link inside the folder adds nothing (its target is an
item under its own path); a link outside it fails `link_outside_root` unless `follow_links: outside`; a
broken link fails `broken_link`; a FIFO, device or unlistable folder fails `read_error`.
"""

from __future__ import annotations

from collections.abc import Iterator

from lvm_data.items import ItemRef, Part
from lvm_data.sources.base import Source, Unit
from lvm_data.sources.listing import (
    RefusedEntry,
    chunks,
    entry_key,
    entry_uri,
    expand_inputs,
    follow_links,
    refused_ref,
)

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif")


class ImageFiles(Source):
    format = "images"

    def plan(self) -> list[Unit]:
        files = expand_inputs(
            self.name,
            self.options["paths"],
            self.options.get("extensions", IMAGE_EXTENSIONS),
            follow_links(self.name, self.options),
        ).entries()
        size = int(self.options["shard_size"])
        return [Unit(self.name, f"{i:06d}", tuple(chunk), len(chunk)) for i, chunk in enumerate(chunks(files, size))]

    def files(self, unit: Unit) -> list[str]:
        """The unit's image files (a refused entry names no file to stamp)."""
        return [entry_uri(e) for e in unit.spec if not isinstance(e, RefusedEntry)]

    def read(self, unit: Unit) -> Iterator[ItemRef]:
        for entry in unit.spec:
            if isinstance(entry, RefusedEntry):
                yield refused_ref(self.name, unit.id, entry)
                continue
            uri = entry_uri(entry)
            yield ItemRef(source=self.name, key=entry_key(entry), unit=unit.id, parts={"image": Part(uri)})
