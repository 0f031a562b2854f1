"""`paired`: images with one or more annotation kinds, matched by key, never by sorted position.

Input block: `images` (paths of the x side), `annotations` ({kind: paths} or {kind: {paths: ...,
render options}}; kinds: depth, segmentation, normals, edges, pose, boxes, target), `match`
(optional regex; its first group, searched in a file's path relative to its root, is the key;
default: that relative path without its extension, so `scene1/0001.jpg` pairs with
`scene1/0001.png`), `require` (all | any: whether an item needs every annotation kind, default all).

Every file ends in exactly one item: a matched key is one item (image + annotations); an image or
annotation without its partner, and a file whose key another file of the same side already has,
become items that fail `unpaired` (their detail says what is missing), keyed by their path relative to their
root (`@1`, `@2`, ... added when that is another item's key). Units are hash buckets of
the keys (lvm_data.sources.trees.hash_units), so each unit is a uniform sample of the source.
"""

from __future__ import annotations

from collections.abc import Iterator

from lvm_data.items import ERROR_META, ItemRef, Part
from lvm_data.media.annotation_decoders import KINDS
from lvm_data.media.frame_folders import IMAGE_EXTENSIONS
from lvm_data.media.parts import AnnotationPart, options_tuple
from lvm_data.outcomes import Reason
from lvm_data.sources.base import Source, Unit
from lvm_data.sources.listing import RefusedEntry, SourceError, follow_links, unique_key
from lvm_data.sources.trees import hash_units, key_rule, rooted_inputs, unheld

REQUIRE = ("all", "any")


class Paired(Source):
    format = "paired"

    def __init__(self, name: str, options: dict):
        super().__init__(name, options)
        annotations = options.get("annotations") or {}
        if not annotations:
            raise SourceError(
                f"source {name!r}: input.annotations names no annotation kind; "
                f"give e.g. annotations: {{depth: path/to/depth}} (kinds: {', '.join(KINDS)})"
            )
        unknown = sorted(set(annotations) - set(KINDS))
        if unknown:
            raise SourceError(
                f"source {name!r}: input.annotations: {', '.join(unknown)} is not an annotation kind; "
                f"use {', '.join(KINDS)} (any pre-rendered RGB annotation is `target`)"
            )
        self.annotations = {
            kind: spec if isinstance(spec, dict) else {"paths": spec} for kind, spec in annotations.items()
        }
        self.require = options.get("require", "all")
        if self.require not in REQUIRE:
            raise SourceError(f"source {name!r}: input.require is {self.require!r}; use all or any")

    def plan(self) -> list[Unit]:
        entries = self._entries()
        units = hash_units([e[0] for e in entries], int(self.options["shard_size"]))
        return [
            Unit(self.name, uid, tuple(entries[i] for i in positions), len(positions))
            for uid, positions in units.items()
        ]

    def _entries(self) -> list[tuple]:
        """(key, image uri | None, ((kind, uri), ...), unpaired detail | None) per item, sorted by key."""
        key = key_rule(self.options.get("match"))
        image_ext = [e.lstrip(".") for e in IMAGE_EXTENSIONS]
        links = follow_links(self.name, self.options)
        sides, refused = {}, []  # refused by the listings (links out of a root, ...): items of their own
        for side, paths, extensions in [
            ("image", self.options["images"], image_ext),
            *((kind, spec["paths"], None) for kind, spec in self.annotations.items()),
        ]:
            field = "images" if side == "image" else f"annotations.{side}"
            sides[side], out = rooted_inputs(self.name, field, paths, extensions, links)
            refused += out
        tables: dict[str, dict[str, str]] = {side: {} for side in sides}
        extra: list[tuple] = []  # keyed by their path below their root, made unique (listing.unique_key)
        for side, files in sides.items():
            for uri, rel in files:
                k = key(rel)
                if k is None:
                    extra.append((rel, None, ((side, uri),), f"{uri}: its path does not match input.match"))
                elif k in tables[side]:
                    extra.append(
                        (
                            rel,
                            None,
                            ((side, uri),),
                            f"{uri}: key {k!r} is also the key of "
                            f"{tables[side][k]}; keys must be unique per side (set input.match)",
                        )
                    )
                else:
                    tables[side][k] = uri
        extra += [(r.key, None, (), r) for r in unheld(refused)]
        keys = sorted(set().union(*(t.keys() for t in tables.values())))
        taken = set(keys)
        extra = [(unique_key(k, taken), *rest) for k, *rest in extra]
        return [self._entry(k, tables) for k in keys] + sorted(extra, key=lambda e: e[0])

    def _entry(self, key: str, tables: dict[str, dict[str, str]]) -> tuple:
        image = tables["image"].get(key)
        found = tuple((kind, tables[kind][key]) for kind in self.annotations if key in tables[kind])
        missing = [kind for kind in self.annotations if key not in tables[kind]]
        problem = None
        if image is None:
            problem = f"key {key!r}: no image for its {', '.join(k for k, _ in found)}"
        elif not found or (self.require == "all" and missing):
            problem = f"key {key!r}: image {image} has no {', '.join(missing)} annotation"
        return key, image, found, problem

    def files(self, unit: Unit) -> list[str]:
        """Each item's image and annotation files."""
        return [uri for _key, image, found, _problem in unit.spec for uri in (image, *(u for _, u in found)) if uri]

    def read(self, unit: Unit) -> Iterator[ItemRef]:
        for key, image, found, problem in unit.spec:
            parts: dict[str, Part] = {"image": Part(image)} if image else {}
            for kind, uri in found:
                if kind == "image":  # a duplicate image: its own failed item
                    parts[kind] = Part(uri)
                    continue
                options = {k: v for k, v in self.annotations[kind].items() if k != "paths"}
                parts[kind] = AnnotationPart(uri, options=options_tuple(options), image=Part(image) if image else None)
            meta = {}
            if isinstance(problem, RefusedEntry):
                meta[ERROR_META] = {"reason": problem.reason, "detail": problem.detail, "uri": problem.uri}
            elif problem:
                meta[ERROR_META] = {
                    "reason": Reason.UNPAIRED.value,
                    "detail": problem,
                    "uri": next(iter(parts.values())).uri if parts else key,
                }
            yield ItemRef(source=self.name, key=key, unit=unit.id, parts=parts, meta=meta)
