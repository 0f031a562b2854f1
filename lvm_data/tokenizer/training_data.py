"""Training images for the builtin tokenizer: real photos and video frames, augmented crops.

Every source is preprocessed like inference does it (`decode_image`, then `resize` squash) onto a
`canvas` x `canvas` square, so a crop of `crop / zoom` canvas pixels resized to `crop` shows content
at `zoom` times the scale the tokenizer sees at 256x256. Randomness comes only from the
`np.random.Generator` the caller passes in (seed it with `lvm_data.determinism.rng_for`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from av.error import FFmpegError

from lvm_data.media.image import decode_image
from lvm_data.media.resize import resize

CANVAS = 512  # sources are squashed to this size once; zoom 2 at crop 256 would still be a downscale


@dataclass(frozen=True)
class Augment:
    """Ranges the augmentation draws from (uniform unless noted)."""

    zoom: tuple[float, float] = (0.5, 2.0)  # log-uniform; 1.0 = the scale of a 256x256 squash
    aspect: tuple[float, float] = (0.8, 1.25)  # log-uniform width/height stretch of the crop window
    hflip: float = 0.5  # probability of a horizontal flip
    brightness: float = 0.08  # multiply by 1 +- this
    contrast: float = 0.08  # scale around the mean by 1 +- this
    saturation: float = 0.12  # scale away from the grey value by 1 +- this


@dataclass
class TrainingData:
    """Sources as (CANVAS, CANVAS, 3) uint8 RGB squares; `weights` is the sampling probability of each."""

    images: list[np.ndarray] = field(repr=False)
    names: list[str]
    weights: np.ndarray
    heldout: list[np.ndarray] = field(default_factory=list, repr=False)  # validation frames, 256x256
    heldout_names: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not self.images:
            raise ValueError("TrainingData needs at least one source image")
        if len(self.images) != len(self.names) or len(self.weights) != len(self.images):
            raise ValueError("TrainingData: images, names and weights must have the same length")


def load_training_data(
    photos: list[Path],
    videos: list[Path],
    *,
    frame_stride: int = 4,
    heldout_fraction: float = 0.15,
    photo_share: float = 0.5,
) -> TrainingData:
    """Decode photos and every `frame_stride`-th video frame.

    The last `heldout_fraction` of each video's frames is kept out of training and returned as
    `heldout` (256x256 squash) for validation. `photo_share` of the sampling mass goes to photos
    (uniformly), the rest to videos (equal per video, uniformly over its frames).
    """
    images, names, weights = [], [], []
    for path in photos:
        images.append(resize(decode_image(Path(path).read_bytes(), str(path)), CANVAS))
        names.append(Path(path).name)
        weights.append(photo_share / len(photos) if videos else 1.0 / len(photos))
    heldout, heldout_names = [], []
    for path in videos:
        frames = read_video_frames(Path(path))
        cut = len(frames) - max(1, round(len(frames) * heldout_fraction))
        train_ids = list(range(0, cut, frame_stride))
        for i in train_ids:
            images.append(resize(frames[i], CANVAS))
            names.append(f"{Path(path).name}#{i}")
            weights.append(
                (1.0 - photo_share) / len(videos) / len(train_ids) if photos else 1.0 / len(videos) / len(train_ids)
            )
        for i in sorted({cut, len(frames) - 1}):
            heldout.append(resize(frames[i], 256))
            heldout_names.append(f"{Path(path).name}#{i}")
    weights = np.asarray(weights, dtype=np.float64)
    return TrainingData(images, names, weights / weights.sum(), heldout, heldout_names)


def read_video_frames(path: Path) -> list[np.ndarray]:
    """All frames of a video file as (H, W, 3) uint8 RGB (PyAV converts to rgb24: no BGR flip needed)."""
    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except (FFmpegError, OSError) as err:
        raise ValueError(f"{path}: cannot decode this video for training ({err}); remove it from the list") from err
    if not frames:
        raise ValueError(f"{path}: the video has no frames; remove it from the list")
    return frames


def sample_batch(
    data: TrainingData, rng: np.random.Generator, batch_size: int, crop: int, augment: Augment = Augment()
) -> np.ndarray:
    """(batch_size, crop, crop, 3) uint8 RGB augmented crops, sources drawn by `data.weights`."""
    picks = rng.choice(len(data.images), size=batch_size, p=data.weights)
    return np.stack([augment_crop(data.images[i], rng, crop, augment) for i in picks])


def augment_crop(canvas: np.ndarray, rng: np.random.Generator, crop: int, augment: Augment) -> np.ndarray:
    """One random window of `canvas` at a random zoom and stretch, resized to crop x crop, flipped, jittered."""
    size = canvas.shape[0]
    zoom = np.exp(rng.uniform(*np.log(augment.zoom)))
    stretch = np.exp(rng.uniform(*np.log(augment.aspect)))
    side = size * crop / (256.0 * zoom)  # canvas pixels that map to `crop` output pixels
    width = int(round(min(size, max(8.0, side * np.sqrt(stretch)))))
    height = int(round(min(size, max(8.0, side / np.sqrt(stretch)))))
    top = int(rng.integers(0, size - height + 1))
    left = int(rng.integers(0, size - width + 1))
    out = resize(np.ascontiguousarray(canvas[top : top + height, left : left + width]), crop)
    if rng.random() < augment.hflip:
        out = out[:, ::-1]
    return jitter_colour(out, rng, augment)


def jitter_colour(image: np.ndarray, rng: np.random.Generator, augment: Augment) -> np.ndarray:
    """Small brightness, contrast and saturation changes; (H, W, 3) uint8 -> uint8."""
    x = image.astype(np.float32)
    x *= 1.0 + rng.uniform(-augment.brightness, augment.brightness)
    mean = x.mean()
    x = (x - mean) * (1.0 + rng.uniform(-augment.contrast, augment.contrast)) + mean
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = grey[..., None] + (x - grey[..., None]) * (1.0 + rng.uniform(-augment.saturation, augment.saturation))
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)
