"""`webdataset`: tar shards as img2dataset writes them ({key}.jpg + {key}.json / {key}.txt).

One unit per tar. Members are grouped by key (folder + file name up to the first dot, the
webdataset convention); the image member's bytes travel inline in `Part.data`, `.txt` becomes
`meta["caption"]` and `.json` `meta["json"]`. A sample without an image member, a key that
reappears later in the tar, and a tar that ends early or cannot be opened all become ledger rows.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator

from lvm_data import storage
from lvm_data.items import ItemRef, Part
from lvm_data.outcomes import Reason
from lvm_data.sources.base import Source, Unit
from lvm_data.sources.files import IMAGE_EXTENSIONS
from lvm_data.sources.listing import expand_paths, failed_ref, unit_ids


def split_member(name: str) -> tuple[str, str]:
    """('dir/000012', 'jpg') from 'dir/000012.jpg'; the extension is everything after the first dot."""
    folder, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


class WebDataset(Source):
    format = "webdataset"

    def plan(self) -> list[Unit]:
        tars = expand_paths(self.name, self.options["paths"], ("tar",))
        return [Unit(self.name, uid, (uri, storage.size(uri)), None) for uid, uri in zip(unit_ids(
            [uri.rsplit("/", 1)[-1].removesuffix(".tar") for uri in tars]), tars, strict=True)]

    def read(self, unit: Unit) -> Iterator[ItemRef]:
        tar_uri = unit.spec[0]
        fs, path = storage.filesystem(tar_uri)
        seen: set[str] = set()
        current, members = None, {}
        try:
            with fs.open_input_stream(path) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
                for info in tar:
                    if not info.isfile() or info.name.rsplit("/", 1)[-1].startswith("."):
                        continue
                    key, ext = split_member(info.name)
                    if key != current and current is not None:
                        yield self._item(unit, tar_uri, current, members, seen)
                        members = {}
                    current = key
                    members[ext] = tar.extractfile(info).read()
                if current is not None:
                    yield self._item(unit, tar_uri, current, members, seen)
        except (tarfile.TarError, OSError, EOFError) as err:
            if current is not None and members:
                yield self._item(unit, tar_uri, current, members, seen)
            reason = Reason.TRUNCATED if "unexpected end" in str(err).lower() else Reason.READ_ERROR
            yield failed_ref(self.name, f"{tar_uri}#<unreadable>", unit.id, tar_uri, reason,
                             f"{tar_uri}: {type(err).__name__}: {err}; samples after this point were not read")

    def _item(self, unit: Unit, tar_uri: str, key: str, members: dict[str, bytes], seen: set[str]) -> ItemRef:
        item_key = f"{tar_uri}#{key}"
        if item_key in seen:
            return failed_ref(self.name, f"{item_key}@{len(seen)}", unit.id, item_key, Reason.READ_ERROR,
                              f"{item_key}: key appears again later in the tar; webdataset samples must be "
                              "contiguous and keys unique")
        seen.add(item_key)
        wanted = self.options.get("image_extensions", IMAGE_EXTENSIONS)
        ext = next((e for e in wanted if e in members), None)
        meta = _meta(members)
        if ext is None:
            return failed_ref(self.name, item_key, unit.id, item_key, Reason.NOT_MEDIA,
                              f"{item_key}: no image member (has {', '.join(sorted(members)) or 'nothing'}; "
                              f"looked for {', '.join(wanted)})")
        return ItemRef(source=self.name, key=item_key, unit=unit.id,
                       parts={"image": Part(f"{tar_uri}#{key}.{ext}", data=members[ext])}, meta=meta)


def _meta(members: dict[str, bytes]) -> dict:
    meta = {}
    if "txt" in members:
        meta["caption"] = members["txt"].decode("utf-8", errors="replace")
    if "json" in members:
        try:
            meta["json"] = json.loads(members["json"])
        except (json.JSONDecodeError, UnicodeDecodeError):
            meta["json_error"] = "unparseable .json member"
    return meta
