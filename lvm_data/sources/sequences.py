"""`sequences` (annotated sequences) and `multiview` (ordered views of objects).

sequences: `frames` (roots holding one folder of frame images per sequence) and `annotations`
({kind: root} or {kind: {paths: root, render options}}): the annotations of the sequence in
`<frames root>/a/b` are in `<annotation root>/a/b`, one file per frame, matched to frames by key
(file stem, or the first group of the `match` regex), never by position. Clip options as for
videos under `clip` (default 8 frames, so one annotation kind fills 16 images), plus `seed`, `fps`.
A sequence without a folder for every annotation kind is `unpaired`.

multiview: every folder under `paths` that directly holds images is one object, its views in
natural order; or, with `pattern` (a regex with named groups `object` and `view`, searched in each
file's path relative to its root), files are grouped by `object` and ordered by `view` (numerically
when it is a number). A file the pattern does not match is its own item that fails `unpaired`.
Units of both are consecutive runs of `shard_size` items. Item keys are location-free
(lvm_data.sources.listing): a sequence's or object's folder relative to its root ("." for a root that holds
the images itself), a pattern's `object`, an unmatched or refused file's path relative to its root.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lvm_data import storage
from lvm_data.items import ERROR_META, ItemRef
from lvm_data.media.annotation_decoders import KINDS
from lvm_data.media.clips import ClipSpec
from lvm_data.media.frame_folders import IMAGE_EXTENSIONS, natural_key
from lvm_data.media.parts import SequencePart, ViewsPart, options_tuple
from lvm_data.outcomes import Reason
from lvm_data.sources.base import Source, Unit
from lvm_data.sources.listing import RefusedEntry, SourceError, as_list, check_unique_keys, follow_links, refused_ref
from lvm_data.sources.trees import absolute, leaf_folders, rooted_files, rooted_inputs, unheld
from lvm_data.sources.videos import runs

IMAGE_EXT = [e.lstrip(".") for e in IMAGE_EXTENSIONS]


def _unpaired(uri: str, detail: str) -> dict:
    return {ERROR_META: {"reason": Reason.UNPAIRED.value, "detail": detail, "uri": uri}}


class Sequences(Source):
    format = "sequences"

    def __init__(self, name: str, options: dict):
        super().__init__(name, options)
        annotations = options.get("annotations") or {}
        unknown = sorted(set(annotations) - set(KINDS))
        if not annotations or unknown:
            raise SourceError(
                f"source {name!r}: input.annotations must map annotation kinds ({', '.join(KINDS)}) "
                f"to folders; got {sorted(annotations) or 'none'}"
            )
        self.annotations = {k: v if isinstance(v, dict) else {"paths": v} for k, v in annotations.items()}
        try:
            self.spec = ClipSpec.from_options({"frames": 8, **options.get("clip", {})})
        except (TypeError, ValueError) as err:
            raise SourceError(f"source {name!r}: input.clip: {err}") from err

    def plan(self) -> list[Unit]:
        roots = as_list(self.options["frames"])
        folders = leaf_folders(rooted_files(self.name, "frames", roots, IMAGE_EXT))
        items = []
        for rel, files in sorted(folders.items()):  # keyed by the folder's path below its root ("." for the root)
            folder = files[0].rsplit("/", 1)[0]
            found = tuple(
                (kind, storage.join(_root(spec["paths"]), rel) if rel else _root(spec["paths"]))
                for kind, spec in self.annotations.items()
            )
            items.append((folder, found, rel or "."))
        return runs(self.name, items, int(self.options["shard_size"]))

    def files(self, unit: Unit) -> list[str]:
        """The frame folders and their annotation folders (a local folder's time changes when files are added,
        removed or renamed)."""
        return [path for folder, found, _key in unit.spec for path in (folder, *(p for _, p in found))]

    def read(self, unit: Unit) -> Iterator[ItemRef]:
        for folder, found, key in unit.spec:
            missing = [kind for kind, path in found if not storage.list_files(path, recursive=False)]
            annotations = tuple(
                (kind, path, options_tuple({k: v for k, v in self.annotations[kind].items() if k != "paths"}))
                for kind, path in found
            )
            part = SequencePart(
                folder,
                annotations=annotations,
                spec=self.spec,
                key=key,
                seed=int(self.options.get("seed", 0)),
                fps=float(self.options.get("fps", 0.0)),
                match=self.options.get("match", ""),
            )
            meta = (
                _unpaired(
                    folder,
                    f"{folder}: no {', '.join(missing)} folder with files "
                    f"({', '.join(p for k, p in found if k in missing)})",
                )
                if missing
                else {}
            )
            yield ItemRef(source=self.name, key=key, unit=unit.id, parts={"sequence": part}, meta=meta)


def _root(paths) -> str:
    roots = as_list(paths)
    if len(roots) != 1:
        raise SourceError(f"an annotation root of a sequences input is one folder, got {roots}")
    return absolute(roots[0]).rstrip("/")


class MultiViews(Source):
    format = "multiview"

    def plan(self) -> list[Unit]:
        files, refused = rooted_inputs(
            self.name, "paths", self.options["paths"], IMAGE_EXT, follow_links(self.name, self.options)
        )
        pattern = self.options.get("pattern")
        objects = _by_pattern(files, pattern) if pattern else _by_folder(files)
        objects += [(r.key, (), r) for r in unheld(refused)]  # refused entries: failed items of their own
        check_unique_keys(self.name, {views[0] if views else problem.uri: key for key, views, problem in objects})
        return runs(self.name, sorted(objects, key=lambda o: o[0]), int(self.options["shard_size"]))

    def files(self, unit: Unit) -> list[str]:
        """Every view's image file."""
        return [uri for _key, views, _problem in unit.spec for uri in views]

    def read(self, unit: Unit) -> Iterator[ItemRef]:
        for key, views, problem in unit.spec:
            if isinstance(problem, RefusedEntry):
                yield refused_ref(self.name, unit.id, problem)
                continue
            meta = _unpaired(views[0], problem) if problem else {}
            yield ItemRef(
                source=self.name,
                key=key,
                unit=unit.id,
                parts={"views": ViewsPart(views[0], views=tuple(views))},
                meta=meta,
            )


def _by_folder(files: list[tuple[str, str]]) -> list[tuple]:
    out = []
    for rel, uris in leaf_folders(files).items():  # keyed by the folder's path below its root ("." for the root)
        views = sorted(uris, key=lambda u: natural_key(u.rsplit("/", 1)[-1]))
        out.append((rel or ".", tuple(views), None))
    return out


def _by_pattern(files: list[tuple[str, str]], pattern: str) -> list[tuple]:
    regex = re.compile(pattern)
    if not {"object", "view"} <= set(regex.groupindex):
        raise SourceError(f"multiview input.pattern {pattern!r} needs named groups (?P<object>...) and (?P<view>...)")
    objects: dict[str, list[tuple]] = {}
    out = []
    for uri, rel in files:
        found = regex.search(rel)
        if not found:
            out.append((rel, (uri,), f"{uri}: its path does not match input.pattern {pattern!r}"))
            continue
        view = found.group("view")
        objects.setdefault(found.group("object"), []).append((natural_key(view), uri))
    for name, views in objects.items():
        out.append((name, tuple(uri for _, uri in sorted(views)), None))
    return out
