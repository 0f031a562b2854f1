import hashlib
import shutil

import numpy as np
from PIL import Image

from lvm_data.media import samples
from lvm_data.samplecorpus.inputs import FACES_PER_CLASS, SEQUENCE_FRAMES, assemble

GRAY_PHOTOS = {"camera", "brick", "grass", "gravel", "coins", "moon", "page"}


def digests(root) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_layout_holds_every_kind_of_input(assembled):
    root = assembled.root
    assert assembled.groups == {
        "photos": 18,
        "annotations": 36,
        "faces": 2 * FACES_PER_CLASS,
        "videos": 4,
        "stereo": 3,
        "sequences": 2 * SEQUENCE_FRAMES,
    }
    assert {p.stem for p in (root / "photos" / "gray").iterdir()} == GRAY_PHOTOS
    assert len(list((root / "photos" / "color").iterdir())) == 11
    for package in samples.photos("all"):
        kind = "gray" if package.stem in GRAY_PHOTOS else "color"
        assert (root / "photos" / kind / package.name).read_bytes() == package.read_bytes()  # copied as shipped
    for video in samples.videos():
        assert (root / "videos" / video.name).read_bytes() == video.read_bytes()
    left, right, disparity = samples.stereo_pair()
    assert (root / "stereo" / "left" / "motorcycle.png").read_bytes() == left.read_bytes()
    assert (root / "stereo" / "right" / "motorcycle.png").read_bytes() == right.read_bytes()
    assert (root / "stereo" / "disparity" / "motorcycle.npz").read_bytes() == disparity.read_bytes()


def test_annotations_pair_with_their_photo_pixel_for_pixel(assembled):
    root = assembled.root
    for photo in sorted((root / "photos").rglob("*.*")):
        rel = photo.relative_to(root / "photos").with_suffix(".png")
        size = Image.open(photo).size
        for kind in ("edges", "segmentation"):
            annotation = Image.open(root / "annotations" / kind / rel)
            assert annotation.mode == "L" and annotation.size == size, (kind, rel)
    frames = sorted((root / "sequences" / "frames" / "bikes").iterdir())
    labels = sorted((root / "sequences" / "segmentation" / "bikes").iterdir())
    assert [p.name for p in frames] == [p.name for p in labels] and len(frames) == SEQUENCE_FRAMES
    assert Image.open(frames[0]).size == Image.open(labels[0]).size == (640, 272)
    assert not np.array_equal(np.asarray(Image.open(frames[0])), np.asarray(Image.open(frames[-1])))


def test_faces_are_the_lfw_subsets_two_classes(assembled):
    lfw = np.load(samples.package_file("skimage", "lfw_subset.npy"))
    for label, start in (("face", 0), ("not_face", 100)):
        files = sorted((assembled.root / "faces" / label).iterdir())
        assert len(files) == FACES_PER_CLASS
        first = np.asarray(Image.open(files[0]))
        assert first.shape == (25, 25) and np.abs(first / 255.0 - lfw[start]).max() <= 0.5 / 255 + 1e-9


def test_rerun_keeps_every_file_and_a_missing_one_comes_back_identical(assembled, tmp_path):
    root = tmp_path / "media"
    shutil.copytree(assembled.root, root)
    before = digests(root)
    again = assemble(root)
    assert (again.written, again.kept) == (0, len(before))
    for rel in (
        "annotations/segmentation/color/astronaut.png",
        "sequences/frames/bikes/00006.png",
        "sequences/segmentation/bikes/00006.png",
        "faces/not_face/0003.png",
    ):
        (root / rel).unlink()
    rebuilt = assemble(root)
    assert (rebuilt.written, rebuilt.kept) == (4, len(before) - 4)
    assert digests(root) == before
