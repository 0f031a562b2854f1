"""`images`: still-image files from local folders, globs and gs:// prefixes.

Units are consecutive runs of `shard_size` files in sorted order; an item's key is its URI.
Folders keep files with image extensions (jpg, jpeg, png, webp, bmp, tif, tiff, gif unless the
`extensions` option says otherwise); glob patterns keep every match, so a non-image file a glob
names becomes a ledger row (`not_media`) rather than being skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

from lvm_data.items import ItemRef, Part
from lvm_data.sources.base import Source, Unit
from lvm_data.sources.listing import chunks, expand_paths

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif")


class ImageFiles(Source):
    format = "images"

    def plan(self) -> list[Unit]:
        files = expand_paths(self.name, self.options["paths"], self.options.get("extensions", IMAGE_EXTENSIONS))
        size = int(self.options["shard_size"])
        return [Unit(self.name, f"{i:06d}", tuple(chunk), len(chunk)) for i, chunk in enumerate(chunks(files, size))]

    def read(self, unit: Unit) -> Iterator[ItemRef]:
        for uri in unit.spec:
            yield ItemRef(source=self.name, key=uri, unit=unit.id, parts={"image": Part(uri)})
