"""Job checks that need no storage and no tokenizer, run when the job file is read (before any work):

- the output's scheme: units commit file by file, each written under a temporary name and moved into place whole,
  then the marker: a local disk (rename) or an object store whose move is a copy of the whole object (gs://, and
  through fsspec s3://, gcs://, az://, abfs(s)://; memory://, one process's memory, serves the embedded in-memory
  runner and tests). http(s)://, hf:// and other schemes are inputs only; an fsspec store whose package is missing is
  named with its pip install;
- the output inside (or equal to) an input folder: the next run would read the output as input;
- a template its input format cannot feed, where every item would fail (`pairs` on `images`: all `unpaired`).

Each problem names the field and the fix (lvm_data.job.config.semantic_problems gathers them).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import fsspec

from lvm_data import storage
from lvm_data.job.jobfile import JobConfig
from lvm_data.sources.listing import expand_braces

OUTPUT_SCHEMES = ("gs", "s3", "s3a", "gcs", "az", "abfs", "abfss", "memory")  # besides local paths

IMAGE_FORMATS = ("images", "webdataset", "parquet", "hf")  # items of one image (role "image")
# Template -> the input formats whose items it can build from; a template not named takes every format.
FEEDS: dict[str, tuple[str, ...]] = {
    "video": ("videos", "frame_folders"),  # needs sampled clips
    "sequence": ("sequences", "videos", "frame_folders"),  # clips; annotations when the input has them
    "pairs": ("paired", "sequences"),  # an image and an annotation per item
    "multi_annotation": ("paired", "sequences"),
    "category": (*IMAGE_FORMATS, "paired", "sequences"),  # an image (role "image") with a label
    "derived": (*IMAGE_FORMATS, "paired", "sequences"),  # an image to derive the target from
    "multiview": ("multiview", "videos", "frame_folders", "sequences"),  # several views per item
}
HINTS = {
    "pairs": "image/annotation pairs come from format: paired (images + annotations); pairs derived from plain "
    "images (edges, inpainting, ...) are template: derived",
    "multi_annotation": "an image with its annotations comes from format: paired",
    "video": "a still image is not a video: single images are template: single",
    "sequence": "a still image is not a sequence: single images are template: single",
    "multiview": "the views of an object come from format: multiview (a folder of images per object)",
}
INPUT_FIELDS = ("paths", "images", "frames", "path", "imagefolder")
BRACE_FORMATS = ("images", "webdataset", "parquet", "videos")  # whose `paths` expand braces (sources.listing)
WILDCARD = re.compile(r"[*?\[]")


def job_problems(job: JobConfig) -> list[str]:
    """Problems of a JobConfig's output and of its sources' template/format pairs, as 'field: what, fix'."""
    return output_problems(job) + template_problems(job)


def output_problems(job: JobConfig) -> list[str]:
    out_scheme = storage.scheme(job.output)
    if out_scheme and out_scheme not in OUTPUT_SCHEMES:
        return [
            f"output: {job.output}: {out_scheme}:// is not supported for outputs (units commit by moving whole "
            f"files into place); use a local folder or {', '.join(s + '://' for s in OUTPUT_SCHEMES)} "
            f"({out_scheme}:// is for inputs)"
        ]
    if out_scheme not in ("", storage.GS.removesuffix("://")):
        try:
            fsspec.get_filesystem_class(out_scheme)
        except ImportError:
            package = storage.PACKAGES.get(out_scheme, out_scheme)
            return [f"output: {job.output}: writing {out_scheme}:// needs the {package} package; pip install {package}"]
    problems = []
    out = _normal(job.output)
    for i, src in enumerate(job.sources):
        for where, entry in input_entries(src.input):
            base, below = reach(entry, braces=where == "paths" and src.format in BRACE_FORMATS)
            folder = _normal(base)
            if out == folder or (below and _inside(out, folder)):
                problems.append(
                    f"output: {job.output} is {'the' if out == folder else 'inside the'} input folder "
                    f"{base} of sources[{i}].input.{where}; the next run would read the output as "
                    "input: choose an output folder outside the inputs"
                )
    return problems


def template_problems(job: JobConfig) -> list[str]:
    problems = []
    for i, src in enumerate(job.sources):
        formats = FEEDS.get(src.template)
        if formats is None or src.format in formats:
            continue
        hint = f"; {HINTS[src.template]}" if src.template in HINTS and src.format in IMAGE_FORMATS else ""
        problems.append(
            f"sources[{i}].template: {src.template} cannot build sentences from a {src.format} input "
            f"(every item would fail); it takes {', '.join(formats)} inputs{hint}"
        )
    return problems


def input_entries(block: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, path entry) of every input location in a source's input block (annotation roots included)."""
    for name in INPUT_FIELDS:
        for entry in _as_list(block.get(name)):
            yield name, entry
    annotations = block.get("annotations")
    if isinstance(annotations, dict):
        for kind, spec in annotations.items():
            for entry in _as_list(spec.get("paths") if isinstance(spec, dict) else spec):
                yield f"annotations.{kind}", entry


def reach(entry: str, braces: bool = False) -> tuple[str, bool]:
    """(the folder an input entry lists, whether it reaches below that folder's own files). A folder is listed
    recursively; a glob pattern (or, with `braces`, a brace pattern that expands) lists the folder before its first
    wildcard, below it when the pattern has `**` or a wildcard in a folder name."""
    found = WILDCARD.search(entry)
    if braces and "{" in entry and _expands(entry):
        at = entry.index("{")
        found = found if found is not None and found.start() < at else re.compile(r"\{").search(entry)
    if found is None:
        return entry, True
    head, rest = entry[: found.start()], entry[found.start() :]
    base = head.rsplit("/", 1)[0] if "/" in head else "."
    return base or "/", "**" in rest or "/" in rest


def _expands(entry: str) -> bool:
    try:
        return len(expand_braces(entry)) > 0
    except ValueError:  # not a brace pattern the sources would expand: planning says so, naming the entry
        return False


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list | tuple) else []


def _normal(location: str) -> str:
    if storage.is_remote(location):
        return location.rstrip("/")
    return os.path.realpath(os.path.expanduser(location))


def _inside(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip("/") + "/")
