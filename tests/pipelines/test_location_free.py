"""The same files give the same rows wherever they are stored (issue 15): keys are relative to each `paths` entry's
root, seeds (inpainting masks, clip offsets) and sentence ids hash those keys, never URIs, so two local folders and
a gs:// prefix (the GCS emulator) give the same sentence ids and tokens, the same ledger keys and the same trainer
validation split; the ledger's `uri` and the sentences' `frames` keep where the bytes were. An output written when
keys were URIs is refused as another job configuration."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from lvm_data import storage
from lvm_data.job.config import parse_job_text
from lvm_data.job.plan import ResumeError
from lvm_data.media.samples import photos
from lvm_data.media.video import write_video
from lvm_data.shards.reader import list_markers, read_ledger, read_sentences
from lvm_data.testing import images_source, job_text, uint8_image, write_tar, write_tiny_checkpoint
from lvm_data.train.shards import is_validation, open_corpus, read_group, small_source_holdouts
from pipelines.tokenize import run_job

SEED, CLIP_SEED = 7, 5
CLIP = {"frames": 4, "stride": 2, "clips": 1, "offset": "random"}  # one of 5 clip positions, at a random offset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, bytes]:
    """Relative path -> bytes: photos (one twice, under two keys), a video twice, a webdataset tar."""
    pics = {p.name: p.read_bytes() for p in photos("heldout")}
    folder = tmp_path_factory.mktemp("video")
    rng = np.random.default_rng(0)
    write_video(str(folder / "pan.mp4"), [uint8_image(rng, 64, 64) for _ in range(40)])
    video = (folder / "pan.mp4").read_bytes()
    write_tar(folder / "00000.tar", [("000.png", pics["chelsea.png"]), ("001.jpg", pics["grace_hopper.jpg"])])
    return {
        "photos/chelsea.png": pics["chelsea.png"],
        "photos/coffee.png": pics["coffee.png"],
        "photos/sub/grace_hopper.jpg": pics["grace_hopper.jpg"],
        "photos/sub/chelsea.png": pics["chelsea.png"],
        "videos/pan.mp4": video,
        "videos/more/pan.mp4": video,
        "tars/00000.tar": (folder / "00000.tar").read_bytes(),
    }


def place(corpus: dict[str, bytes], root: str) -> str:
    for rel, data in corpus.items():
        storage.write_bytes(f"{root}/{rel}", data)
    return root


def run(root: str, out, tiny) -> dict:
    sources = [
        images_source("masks", f"{root}/photos", {"name": "derived", "task": "inpainting", "pairs": 2}),
        {
            "name": "clips",
            "template": "video",
            "input": {"format": "videos", "paths": [f"{root}/videos"], "clip": CLIP, "seed": CLIP_SEED},
        },
        {"name": "web", "input": {"format": "webdataset", "paths": f"{root}/tars"}},
    ]
    text = job_text("where", out, tiny, sources, seed=SEED)
    return run_job(parse_job_text(text), text, [])


def sentences(out) -> list[dict]:
    """Rows sorted by id, with frames as (frame, role): everything but where the files were."""
    table = read_sentences(str(out), columns=["id", "source", "template", "task", "n_images", "tokens", "frames"])
    rows = [{**r, "frames": [(f["frame"], f["role"]) for f in r["frames"]]} for r in table.to_pylist()]
    return sorted(rows, key=lambda r: r["id"])


def ledger(out) -> dict[tuple[str, str], tuple]:
    rows = read_ledger(str(out)).to_pylist()
    assert len({(r["source"], r["key"]) for r in rows}) == len(rows), "one ledger row per item"
    return {(r["source"], r["key"]): (r["status"], r["reason"], tuple(r["sentence_ids"])) for r in rows}


def uris(out) -> dict[tuple[str, str], str]:
    return {(r["source"], r["key"]): r["uri"] for r in read_ledger(str(out)).to_pylist()}


def held_out(out, fraction: float = 0.5) -> set[str]:
    """The ids of the sentences the trainer holds out for validation (lvm_data.train: by content key)."""
    corpus = open_corpus(str(out))
    extra = small_source_holdouts(corpus, fraction)
    ids = set()
    for group in corpus.groups:
        batch = read_group(corpus, group)
        ids |= {batch.ids[i] for i in np.flatnonzero(is_validation(batch.split_keys(), fraction, extra))}
    return ids


def masked_codes(out) -> dict[str, list[int]]:
    """Frame URI -> codes of its inpainting input (the masked image) in the `masks` source."""
    table = read_sentences(str(out), columns=["source", "n_images", "tokens", "frames"]).to_pylist()
    out_ = {}
    for row in (r for r in table if r["source"] == "masks"):
        per = len(row["tokens"]) // row["n_images"]
        for i, frame in enumerate(row["frames"]):
            if frame["role"] == "masked":
                out_[frame["uri"]] = row["tokens"][i * per : (i + 1) * per]
    return out_


EXPECTED_KEYS = {
    ("masks", "chelsea.png"),
    ("masks", "coffee.png"),
    ("masks", "sub/chelsea.png"),
    ("masks", "sub/grace_hopper.jpg"),
    ("clips", "pan.mp4"),
    ("clips", "more/pan.mp4"),
    ("web", "00000.tar#000"),
    ("web", "00000.tar#001"),
}


def test_the_same_files_in_two_folders_and_on_gs_give_the_same_rows_keys_and_validation_split(
    tmp_path, tiny, corpus, gcs
):
    roots = [
        place(corpus, str(tmp_path / "here")),
        place(corpus, str(tmp_path / "else" / "where" / "deeper")),
        place(corpus, f"{gcs}/bucket/copy"),
    ]
    outs = [tmp_path / "out-here", tmp_path / "out-elsewhere", tmp_path / "out-gs"]
    for root, out in zip(roots, outs, strict=True):
        manifest = run(root, out, tiny)
        assert manifest["totals"]["failed"] == 0
    first = sentences(outs[0])
    assert {r["source"] for r in first} == {"masks", "clips", "web"} and len(first) == 6  # 2 x 2 pairs, 2 clips, 2
    for out in outs[1:]:
        assert sentences(out) == first  # ids, tokens, templates and frame (index, role): all the same
        assert ledger(out) == ledger(outs[0])
        assert held_out(out) == held_out(outs[0])
    assert set(ledger(outs[0])) == EXPECTED_KEYS  # keys relative to each paths entry's root
    assert held_out(outs[0]) and held_out(outs[0]) != {r["id"] for r in first}  # a split, not everything
    for root, out in zip(roots, outs, strict=True):  # the ledger's uri and the frames keep where the bytes were
        assert all(uri.startswith(f"{root}/") for uri in uris(out).values())
        frames = read_sentences(str(out), columns=["frames"]).to_pylist()
        assert all(f["uri"].startswith(f"{root}/") for r in frames for f in r["frames"])
    assert uris(outs[2])[("web", "00000.tar#001")] == f"{roots[2]}/tars/00000.tar#001.jpg"

    # the seeds depend on the key: the same bytes under two keys get other masks and another clip
    masks = masked_codes(outs[0])
    assert masks[f"{roots[0]}/photos/chelsea.png"] != masks[f"{roots[0]}/photos/sub/chelsea.png"]
    clips = {
        r["frames"][0]["uri"]: [f["frame"] for f in r["frames"]]
        for r in read_sentences(str(outs[0]), columns=["source", "frames"]).to_pylist()
        if r["source"] == "clips"
    }
    assert clips[f"{roots[0]}/videos/pan.mp4"] != clips[f"{roots[0]}/videos/more/pan.mp4"]


def test_an_output_written_with_uri_keys_is_refused_as_another_job_configuration(tmp_path, tiny, corpus):
    root = place(corpus, str(tmp_path / "in"))
    shutil.rmtree(f"{root}/videos")  # the photos and the tar are enough here
    out = tmp_path / "out"
    sources = [images_source("masks", f"{root}/photos", {"name": "derived", "task": "inpainting", "pairs": 2})]
    text = job_text("old", out, tiny, sources, seed=SEED)
    run_job(parse_job_text(text), text, [])
    manifest = json.loads((out / "manifest.json").read_text())
    config, fingerprint = manifest["job"]["config"], manifest["tokenizer"]["fingerprint"]
    assert config["keys"] == "relative" and _hash(config, fingerprint) == manifest["job"]["config_hash"]
    before = _hash({k: v for k, v in config.items() if k != "keys"}, fingerprint)  # what versions before wrote
    assert before != manifest["job"]["config_hash"]
    manifest["job"]["config_hash"] = before
    (out / "manifest.json").write_text(json.dumps(manifest))
    for marker in list_markers(str(out)):
        path = out / "units" / f"source={marker['source']}" / f"{marker['unit']}.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "config_hash": before}))
    with pytest.raises(ResumeError, match="another job configuration"):
        run_job(parse_job_text(text), text, [])


def _hash(config: dict, fingerprint: str) -> str:
    """lvm_data.job.config.config_hash of a stored config."""
    text = json.dumps(
        {**config, "tokenizer_fingerprint": fingerprint}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
