import numpy as np
import pytest
from PIL import Image

from lvm_data.media.clips import ClipSpec
from lvm_data.media.parts import ClipPart
from lvm_data.media.samples import videos
from lvm_data.sources.listing import SourceError
from lvm_data.sources.videos import FrameFolders, VideoFiles


def test_video_files_carry_their_sampling(tmp_path):
    options = {
        "paths": [str(v) for v in videos()[:2]],
        "shard_size": 1,
        "seed": 7,
        "clip": {"frames": 8, "stride": [4, 6], "clips": 2},
        "timeout_s": 30,
    }
    source = VideoFiles("kinetics", options)
    units = source.plan()
    assert [u.n_items for u in units] == [1, 1]
    ref = next(iter(source.read(units[0])))
    part = ref.parts["video"]
    assert isinstance(part, ClipPart) and part.key == ref.key and part.seed == 7 and part.timeout_s == 30
    assert part.spec == ClipSpec(frames=8, strides=(4, 6), clips=2)


def test_video_folders_keep_video_extensions(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "b.MOV").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    files = [u for unit in VideoFiles("v", {"paths": str(tmp_path), "shard_size": 10}).plan() for u in unit.spec]
    assert [(f.uri.rsplit("/", 1)[-1], f.key) for f in files] == [("a.mp4", "a.mp4"), ("b.MOV", "b.MOV")]


def test_bad_clip_options_are_errors_naming_the_field():
    with pytest.raises(SourceError, match="input.clip"):
        VideoFiles("v", {"paths": "x", "clip": {"offset": "middle"}})


def test_frame_folders_are_leaf_folders_of_images(tmp_path):
    for name, count in (("walk/seq01", 3), ("walk/seq02", 2), ("run/seq10", 1)):
        folder = tmp_path / name
        folder.mkdir(parents=True)
        for i in range(count):
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / f"frame{i}.png")
    source = FrameFolders("ucf", {"paths": str(tmp_path), "shard_size": 2, "fps": 25, "clip": {"frames": 2}})
    units = source.plan()
    keys = [r.key for u in units for r in source.read(u)]
    assert [k.rsplit("/", 2)[-2] + "/" + k.rsplit("/", 1)[-1] for k in keys] == [
        "run/seq10",
        "walk/seq01",
        "walk/seq02",
    ]
    part = next(iter(source.read(units[0]))).parts["frames"]
    assert part.fps == 25 and part.spec.frames == 2
