"""`videos` (video files) and `frame_folders` (one folder of frame images per video).

Both sample clips when decoding (lvm_data.media.clips), with the input block's `clip` options:
`frames` (default 16), `stride` (frames, one or a list; default LVM's [8, 12, 24]) or `spacing_s`
(seconds), `clips` (all | k), `offset` (random | start), `max_clips` (default 64). `seed` (default
0) and each item's key seed the clip choice. Units are consecutive runs of `shard_size` items in
key order; an item's key is its path relative to the root of its `paths` entry (lvm_data.sources.listing:
`a/clip.mp4`; for frame folders the folder's, "." for a root that holds frames itself), so the same files give
the same clips wherever they are stored.

videos: files with video extensions under folders (globs keep every match, so a non-video named by
a glob becomes a ledger row); `timeout_s` per video (default 300) and `backends` (default pyav,
opencv, decord) for the isolated decoder. frame_folders: every folder that directly holds image
files is one video, its frames in natural order (frame2 before frame10); `fps` (needed only for
`spacing_s`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from lvm_data.items import ItemRef
from lvm_data.media.clips import ClipSpec
from lvm_data.media.frame_folders import IMAGE_EXTENSIONS
from lvm_data.media.parts import ClipPart
from lvm_data.media.video import DEFAULT_BACKENDS, DEFAULT_TIMEOUT_S, VIDEO_EXTENSIONS
from lvm_data.sources.base import Source, Unit
from lvm_data.sources.listing import (
    FileEntry,
    RefusedEntry,
    SourceError,
    check_unique_keys,
    chunks,
    entry_key,
    entry_uri,
    expand_inputs,
    follow_links,
    refused_ref,
)
from lvm_data.sources.trees import folder_key, rooted_inputs, unheld


def clip_spec(source: str, options: dict) -> ClipSpec:
    """The input block's `clip` options as a ClipSpec; a bad value is an error naming the field."""
    try:
        return ClipSpec.from_options(options.get("clip", {}))
    except (TypeError, ValueError) as err:
        raise SourceError(f"source {source!r}: input.clip: {err}") from err


def runs(source: str, keys: Sequence, shard_size: int) -> list[Unit]:
    return [Unit(source, f"{i:06d}", tuple(chunk), len(chunk)) for i, chunk in enumerate(chunks(keys, shard_size))]


class VideoFiles(Source):
    format = "videos"

    def __init__(self, name: str, options: dict):
        super().__init__(name, options)
        self.spec = clip_spec(name, options)

    def plan(self) -> list[Unit]:
        extensions = self.options.get("extensions", [e.lstrip(".") for e in VIDEO_EXTENSIONS])
        files = expand_inputs(self.name, self.options["paths"], extensions, follow_links(self.name, self.options))
        return runs(self.name, files.entries(), int(self.options["shard_size"]))  # refused: RefusedEntry items

    def files(self, unit: Unit) -> list[str]:
        """The video files."""
        return [entry_uri(e) for e in unit.spec if not isinstance(e, RefusedEntry)]

    def read(self, unit: Unit) -> Iterator[ItemRef]:
        for entry in unit.spec:
            if isinstance(entry, RefusedEntry):
                yield refused_ref(self.name, unit.id, entry)
                continue
            uri, key = entry_uri(entry), entry_key(entry)
            part = ClipPart(
                uri,
                spec=self.spec,
                key=key,
                seed=int(self.options.get("seed", 0)),
                timeout_s=float(self.options.get("timeout_s", DEFAULT_TIMEOUT_S)),
                backends=tuple(self.options.get("backends", DEFAULT_BACKENDS)),
            )
            yield ItemRef(source=self.name, key=key, unit=unit.id, parts={"video": part})


class FrameFolders(Source):
    format = "frame_folders"

    def __init__(self, name: str, options: dict):
        super().__init__(name, options)
        self.spec = clip_spec(name, options)

    def plan(self) -> list[Unit]:
        extensions = [e.lstrip(".") for e in IMAGE_EXTENSIONS]
        files, refused = rooted_inputs(
            self.name, "paths", self.options["paths"], extensions, follow_links(self.name, self.options)
        )
        folders: dict[str, str] = {}  # folder uri -> key (its path relative to its root)
        for uri, rel in files:
            folders.setdefault(uri.rsplit("/", 1)[0], folder_key(rel))
        others = unheld(refused, folders)
        check_unique_keys(self.name, {**folders, **{e.uri: e.key for e in others}})
        entries = sorted([*(FileEntry(uri, key) for uri, key in folders.items()), *others], key=entry_key)
        return runs(self.name, entries, int(self.options["shard_size"]))

    def files(self, unit: Unit) -> list[str]:
        """The frame folders (a local folder's time changes when frames are added, removed or renamed)."""
        return [entry_uri(e) for e in unit.spec if not isinstance(e, RefusedEntry)]

    def read(self, unit: Unit) -> Iterator[ItemRef]:
        for entry in unit.spec:
            if isinstance(entry, RefusedEntry):
                yield refused_ref(self.name, unit.id, entry)
                continue
            folder, key = entry_uri(entry), entry_key(entry)
            part = ClipPart(
                folder,
                spec=self.spec,
                key=key,
                seed=int(self.options.get("seed", 0)),
                fps=float(self.options.get("fps", 0.0)),
            )
            yield ItemRef(source=self.name, key=key, unit=unit.id, parts={"frames": part})
