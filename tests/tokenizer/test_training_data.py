from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from lvm_data.determinism import rng_for
from lvm_data.media.resize import resize
from lvm_data.tokenizer.training_data import (
    CANVAS,
    Augment,
    TrainingData,
    augment_crop,
    load_training_data,
    read_video_frames,
    sample_batch,
)

STILL = Augment(zoom=(1.0, 1.0), aspect=(1.0, 1.0), hflip=0.0, brightness=0.0, contrast=0.0, saturation=0.0)


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for pixels in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())
    return path


def gradient_canvas() -> np.ndarray:
    y, x = np.mgrid[0:CANVAS, 0:CANVAS]
    return np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)


def test_zoom_half_with_a_square_window_is_the_whole_image_squashed():
    canvas = gradient_canvas()
    whole = Augment(zoom=(0.5, 0.5), aspect=(1.0, 1.0), hflip=0.0, brightness=0.0, contrast=0.0, saturation=0.0)
    crop = augment_crop(canvas, rng_for(0, "t"), 128, whole)
    np.testing.assert_array_equal(crop, resize(canvas, 128))


def test_zoom_one_keeps_the_scale_of_a_256_squash():
    canvas = gradient_canvas()
    crop = augment_crop(canvas, rng_for(0, "t"), 64, STILL)  # 64 output pixels = 128 canvas pixels
    full = resize(canvas, 256)
    matches = [
        (t, left)
        for t in range(0, 193, 2)
        for left in range(0, 193, 2)
        if np.abs(full[t : t + 64, left : left + 64].astype(int) - crop.astype(int)).mean() < 3
    ]
    assert matches, "the crop is not a 64x64 window of the 256x256 squash"


def test_augmentation_is_seeded_and_varies_with_the_seed():
    canvas = gradient_canvas()
    a = augment_crop(canvas, rng_for(1, "x"), 32, Augment())
    b = augment_crop(canvas, rng_for(1, "x"), 32, Augment())
    c = augment_crop(canvas, rng_for(2, "x"), 32, Augment())
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sample_batch_draws_sources_by_weight():
    red = np.zeros((CANVAS, CANVAS, 3), np.uint8)
    red[..., 0] = 200
    blue = np.zeros((CANVAS, CANVAS, 3), np.uint8)
    blue[..., 2] = 200
    data = TrainingData([red, blue], ["red", "blue"], np.array([1.0, 0.0]))
    batch = sample_batch(data, rng_for(0, "b"), 6, 32, STILL)
    assert batch.shape == (6, 32, 32, 3)
    assert (batch[..., 0] > 150).all() and (batch[..., 2] < 50).all()


def test_video_frames_are_rgb_and_the_held_out_tail_never_trains(tmp_path):
    levels = [10 * i for i in range(20)]
    frames = []
    for level in levels:
        pixels = np.full((48, 64, 3), level, np.uint8)
        pixels[:, :32] = (220, 20, 20)  # left half red: catches a BGR flip
        frames.append(pixels)
    video = write_video(tmp_path / "clip.mp4", frames)
    decoded = read_video_frames(video)
    assert len(decoded) == 20
    left = decoded[5][:, 4:28].reshape(-1, 3).mean(0)
    assert left[0] > 180 and left[2] < 70

    photo = tmp_path / "photo.png"
    Image.fromarray(gradient_canvas()[:300, :400]).save(photo)
    data = load_training_data([photo], [video], frame_stride=4, heldout_fraction=0.15, photo_share=0.5)
    assert data.names == ["photo.png", "clip.mp4#0", "clip.mp4#4", "clip.mp4#8", "clip.mp4#12", "clip.mp4#16"]
    assert data.heldout_names == ["clip.mp4#17", "clip.mp4#19"]
    assert data.weights[0] == pytest.approx(0.5) and data.weights.sum() == pytest.approx(1.0)
    train_levels = {round(float(img[:, CANVAS - 100 :].mean())) for img in data.images[1:]}
    held_levels = {round(float(img[:, 200:].mean())) for img in data.heldout}
    assert all(abs(h - t) > 5 for h in held_levels for t in train_levels)


def test_unreadable_video_names_the_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match="broken.mp4"):
        read_video_frames(bad)
