"""`videos` (video files) and `frame_folders` (one folder of frame images per video).

Both sample clips when decoding (lvm_data.media.clips), with the input block's `clip` options:
`frames` (default 16), `stride` (frames, one or a list; default LVM's [8, 12, 24]) or `spacing_s`
(seconds), `clips` (all | k), `offset` (random | start), `max_clips` (default 64). `seed` (default
0) and each item's key seed the clip choice. Units are consecutive runs of `shard_size` items in
sorted order; an item's key is its URI (the folder's, for frame folders).

videos: files with video extensions under folders (globs keep every match, so a non-video named by
a glob becomes a ledger row); `timeout_s` per video (default 300) and `backends` (default pyav,
opencv, decord) for the isolated decoder. frame_folders: every folder that directly holds image
files is one video, its frames in natural order (frame2 before frame10); `fps` (needed only for
`spacing_s`).
"""

from __future__ import annotations

from collections.abc import Iterator

from lvm_data.items import ItemRef
from lvm_data.media.clips import ClipSpec
from lvm_data.media.frames import IMAGE_EXTENSIONS
from lvm_data.media.parts import ClipPart
from lvm_data.media.video import DEFAULT_BACKENDS, DEFAULT_TIMEOUT_S, VIDEO_EXTENSIONS
from lvm_data.sources.base import Source, Unit
from lvm_data.sources.listing import SourceError, chunks, expand_paths
from lvm_data.sources.trees import leaf_folders, rooted_files


def clip_spec(source: str, options: dict) -> ClipSpec:
    """The input block's `clip` options as a ClipSpec; a bad value is an error naming the field."""
    try:
        return ClipSpec.from_options(options.get("clip", {}))
    except (TypeError, ValueError) as err:
        raise SourceError(f"source {source!r}: input.clip: {err}") from err


def runs(source: str, keys: list[str], shard_size: int) -> list[Unit]:
    return [Unit(source, f"{i:06d}", tuple(chunk), len(chunk)) for i, chunk in enumerate(chunks(keys, shard_size))]


class VideoFiles(Source):
    format = "videos"

    def __init__(self, name: str, options: dict):
        super().__init__(name, options)
        self.spec = clip_spec(name, options)

    def plan(self) -> list[Unit]:
        extensions = self.options.get("extensions", [e.lstrip(".") for e in VIDEO_EXTENSIONS])
        files = expand_paths(self.name, self.options["paths"], extensions)
        return runs(self.name, files, int(self.options["shard_size"]))

    def read(self, unit: Unit) -> Iterator[ItemRef]:
        for uri in unit.spec:
            part = ClipPart(uri, spec=self.spec, key=uri, seed=int(self.options.get("seed", 0)),
                            timeout_s=float(self.options.get("timeout_s", DEFAULT_TIMEOUT_S)),
                            backends=tuple(self.options.get("backends", DEFAULT_BACKENDS)))
            yield ItemRef(source=self.name, key=uri, unit=unit.id, parts={"video": part})


class FrameFolders(Source):
    format = "frame_folders"

    def __init__(self, name: str, options: dict):
        super().__init__(name, options)
        self.spec = clip_spec(name, options)

    def plan(self) -> list[Unit]:
        extensions = [e.lstrip(".") for e in IMAGE_EXTENSIONS]
        folders = leaf_folders(rooted_files(self.name, "paths", self.options["paths"], extensions))
        uris = sorted(files[0].rsplit("/", 1)[0] for files in folders.values())
        return runs(self.name, uris, int(self.options["shard_size"]))

    def read(self, unit: Unit) -> Iterator[ItemRef]:
        for folder in unit.spec:
            part = ClipPart(folder, spec=self.spec, key=folder, seed=int(self.options.get("seed", 0)),
                            fps=float(self.options.get("fps", 0.0)))
            yield ItemRef(source=self.name, key=folder, unit=unit.id, parts={"frames": part})
