"""Curation in the main job on the embedded runner: planted duplicates and junk across two sources,
token-space dedup (deterministic with multi_processing, resumable), video clip filters, counts in the
markers, the manifest and the audit, the report, and the same output from the plain in-process loop."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from lvm_data.audit import AuditConfig, run_audit
from lvm_data.audit.report import render_text
from lvm_data.curation.planted import score, write_planted
from lvm_data.job.config import parse_job_text
from lvm_data.job.loop import LocalExecutor
from lvm_data.job.runs import finish_run, open_run
from lvm_data.media.samples import photos
from lvm_data.media.video import write_video
from lvm_data.shards import layout
from lvm_data.shards.reader import list_markers, read_ledger, read_sentences
from lvm_data.testing import images_source, job_text, write_tiny_checkpoint
from lvm_data.tokenizer import load
from pipelines import tokenize
from pipelines.tokenize import run_job

ITEM_FILTERS = ["bounds", "low_variance", {"blocklist": {"patterns": ["*/zz-banned*"]}}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("tiny")))


def run(text: str, *beam_args: str) -> dict:
    return run_job(parse_job_text(text), text, list(beam_args))


def run_local(text: str, tiny: str) -> dict:
    tokenizer = load(tiny, device="cpu")
    planned = open_run(parse_job_text(text), tokenizer)
    LocalExecutor(planned, tokenizer).execute()
    return finish_run(planned, "local loop")


def ledger(out) -> dict[str, tuple[str, str, str]]:
    """file name -> (status, reason, detail); one row per item."""
    table = read_ledger(str(out)).to_pylist()
    assert len({r["key"] for r in table}) == len(table)
    return {r["key"].rsplit("/", 1)[-1]: (r["status"], r["reason"], r["detail"]) for r in table}


def rows(out) -> list:
    table = read_sentences(str(out), columns=["id", "tokens"])
    return sorted(zip(table["id"].to_pylist(), table["tokens"].to_pylist(), strict=True))


def assert_invariant(manifest: dict) -> None:
    for name, totals in manifest["sources"].items():
        assert totals["inputs"] == totals["ok"] + totals["filtered"] + totals["failed"], name


def planted_job(tmp_path, tiny, out_name: str = "out"):
    planted = write_planted(tmp_path / "corpus", photos("heldout"), copies=("exact", "jpeg", "resized", "crop1"))
    sources = [
        {**images_source("photos", planted.photos), "filters": [*ITEM_FILTERS, "duplicates", "near_duplicates"]},
        {**images_source("reposts", planted.reposts), "filters": ["duplicates", "near_duplicates"]},
    ]
    return planted, job_text("planted", tmp_path / out_name, tiny, sources, shard_size=4)


def test_planted_duplicates_and_junk_are_removed_with_their_reasons(tmp_path, tiny):
    planted, text = planted_job(tmp_path, tiny)
    out = tmp_path / "out"
    manifest = run(text)
    got = ledger(out)
    assert {name: reason for name, (_, reason, _) in got.items()} == planted.expected
    assert got["chelsea-exact.png"][2].endswith("/photos/chelsea.png (source photos), which is kept")
    assert "phash distance" in got["coffee-jpeg.jpg"][2] and "/photos/coffee.png" in got["coffee-jpeg.jpg"][2]
    result = score(planted, {name: reason for name, (_, reason, _) in got.items()})
    assert all(r["precision"] == 1.0 and r["recall"] == 1.0 for r in result["reasons"].values())
    assert_invariant(manifest)
    assert manifest["sources"]["reposts"]["curation"] == {"removed": {"duplicate": 3, "near_duplicate": 9}}
    assert manifest["totals"]["curation"]["removed"]["low_variance"] == 2
    assert all("curation" in m["counts"] for m in list_markers(str(out)))
    assert len(rows(out)) == 3  # the three originals
    index = json.loads((out / "curation/index/index.json").read_text())
    assert index["candidates"] == 15 and index["removed"] == {"duplicate": 3, "near_duplicate": 9}
    report = (out / "curation" / "report.md").read_text()
    assert "| reposts | 12 | 0 | duplicate 3, near_duplicate 9 |" in report and "zz-banned" not in report
    sheet = np.asarray(Image.open(out / "curation" / "contact_sheet.png"))
    assert sheet.shape[0] == 5 * (16 + 96 + 12)  # bad_aspect, duplicate, low_variance, near_duplicate, too_small
    audit = run_audit([str(out)], AuditConfig())
    assert audit.ok and audit.curation["reposts"] == {"duplicate": 3, "near_duplicate": 9}
    assert "Curation removals" in render_text(audit) and "duplicate 3, near_duplicate 9" in render_text(audit)
    assert run_local(text.replace(str(out), str(tmp_path / "local")), tiny)["totals"] == manifest["totals"]
    assert rows(tmp_path / "local") == rows(out) and ledger(tmp_path / "local") == got


def test_the_index_is_built_once_and_reused_on_resume(tmp_path, tiny):
    _, text = planted_job(tmp_path, tiny)
    out = tmp_path / "out"
    run(text)
    first, marker_file = ledger(out), out / "curation/index/index.json"
    built = marker_file.stat().st_mtime_ns
    unit = list_markers(str(out), "reposts")[0]
    for rel in (unit["sentences_file"], unit["ledger_file"], layout.marker_file("reposts", unit["unit"])):
        os.remove(out / rel)  # as if the run had died before committing this unit
    run(text)
    assert ledger(out) == first and marker_file.stat().st_mtime_ns == built


def pan(photo: np.ndarray, count: int) -> list[np.ndarray]:
    return [np.ascontiguousarray(photo[:96, 2 * i : 2 * i + 96]) for i in range(count)]


def write_frames(folder, frames: list[np.ndarray]) -> None:
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame{i}.png")


def test_token_space_dedup_is_deterministic_and_resumes_to_the_same_output(tmp_path, tiny):
    cat, coffee = (np.asarray(Image.open(p).convert("RGB")) for p in photos("heldout")[:2])
    shot = pan(cat, 16)
    write_frames(tmp_path / "clips" / "a", shot)
    write_frames(tmp_path / "clips" / "b", shot[:15] + [coffee[:96, :96]])  # 15 of 16 images shared with a
    write_frames(tmp_path / "clips" / "d", pan(coffee, 16))
    write_frames(tmp_path / "copies" / "c", shot)  # the same images as a, in another source
    filters = ["duplicate_sentences", "near_duplicate_sentences"]
    clip = {"frames": 16, "stride": 1, "offset": "start"}
    sources = [
        {
            "name": name,
            "template": "video",
            "filters": filters,
            "input": {"format": "frame_folders", "paths": [str(tmp_path / name)], "clip": clip},
        }
        for name in ("clips", "copies")
    ]
    texts = {name: job_text("tokens", tmp_path / name, tiny, sources, shard_size=1) for name in ("a", "mp", "local")}
    manifest = run(texts["a"])
    got = ledger(tmp_path / "a")
    assert {n: r for n, (_, r, _) in got.items()} == {
        "a": "ok",
        "b": "near_duplicate_sentence",
        "c": "duplicate_sentence",
        "d": "ok",
    }
    assert "/clips/a/frame0.png, source clips), which is kept" in got["c"][2]
    assert manifest["totals"]["curation"]["removed"] == {"duplicate_sentence": 1, "near_duplicate_sentence": 1}
    assert_invariant(manifest)
    report = (tmp_path / "a" / "curation" / "report.md").read_text()  # removed sentences shown decoded
    assert "### duplicate_sentence" in report and (tmp_path / "a" / "curation" / "contact_sheet.png").exists()
    run(texts["mp"], "--direct_num_workers=2", "--direct_running_mode=multi_processing")
    run_local(texts["local"], tiny)
    assert rows(tmp_path / "mp") == rows(tmp_path / "a") == rows(tmp_path / "local")
    assert ledger(tmp_path / "mp") == got == ledger(tmp_path / "local")
    loser = next(m for m in list_markers(str(tmp_path / "a"), "clips") if m["counts"]["filtered"])
    for rel in (loser["sentences_file"], loser["ledger_file"], layout.marker_file("clips", loser["unit"])):
        os.remove(tmp_path / "a" / rel)  # b's unit is redone: a's committed signature must still remove it
    run(texts["a"])
    assert ledger(tmp_path / "a") == got and rows(tmp_path / "a") == rows(tmp_path / "mp")


def test_a_run_stopped_before_the_dedup_decision_resumes_from_its_staged_units(tmp_path, tiny, monkeypatch):
    cat, coffee = (np.asarray(Image.open(p).convert("RGB")) for p in photos("heldout")[:2])
    write_frames(tmp_path / "clips" / "a", pan(cat, 16))
    write_frames(tmp_path / "clips" / "b", pan(cat, 16))  # the same clip: removed by the decision
    write_frames(tmp_path / "clips" / "d", pan(coffee, 16))
    source = {
        "name": "clips",
        "template": "video",
        "filters": ["duplicate_sentences"],
        "input": {
            "format": "frame_folders",
            "paths": [str(tmp_path / "clips")],
            "clip": {"frames": 16, "stride": 1, "offset": "start"},
        },
    }
    clean = job_text("staged", tmp_path / "clean", tiny, [source], shard_size=1)
    run(clean)
    text = job_text("staged", tmp_path / "out", tiny, [source], shard_size=1)

    def stopped(*args):
        raise KeyboardInterrupt("killed before the decision pass")

    monkeypatch.setattr(tokenize, "commit_staged", stopped)
    with pytest.raises(KeyboardInterrupt):
        run(text)
    assert list_markers(str(tmp_path / "out")) == []  # nothing of a pooled source commits before the decision
    assert len(list((tmp_path / "out" / "curation" / "staged").rglob("*.pkl"))) == 3
    monkeypatch.undo()
    tokenizing = []
    real = tokenize._run_pipeline
    monkeypatch.setattr(tokenize, "_run_pipeline", lambda *a: tokenizing.append(a) or real(*a))
    manifest = run(text)
    assert tokenizing == [], "staged units are not encoded again"
    assert ledger(tmp_path / "out") == ledger(tmp_path / "clean") and rows(tmp_path / "out") == rows(tmp_path / "clean")
    assert {n: r for n, (_, r, _) in ledger(tmp_path / "out").items()} == {
        "a": "ok",
        "b": "duplicate_sentence",
        "d": "ok",
    }
    assert manifest["totals"]["curation"]["removed"] == {"duplicate_sentence": 1}
    assert not list((tmp_path / "out" / "curation" / "staged").rglob("*.pkl"))  # committed units are unstaged


def test_video_clip_filters_in_the_job(tmp_path, tiny):
    cat, coffee = (np.asarray(Image.open(p).convert("RGB")) for p in photos("heldout")[:2])
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(str(folder / "static.mp4"), [cat[:96, :96]] * 32)
    write_video(str(folder / "cut.mp4"), pan(cat, 10) + pan(coffee, 22))  # a cut between frames 9 and 10
    write_video(str(folder / "moving.mp4"), pan(coffee, 32))
    clip = {"frames": 4, "stride": 4, "offset": "start"}
    source = {
        "name": "clips",
        "template": "video",
        "input": {"format": "videos", "paths": [str(folder)], "clip": clip},
        "filters": ["static_clips", {"scene_cuts": {"action": "split", "min_frames": 2}}],
    }
    manifest = run(job_text("video", tmp_path / "out", tiny, [source]))
    got = ledger(tmp_path / "out")
    assert {n: r for n, (_, r, _) in got.items()} == {"static.mp4": "static_clip", "cut.mp4": "ok", "moving.mp4": "ok"}
    table = read_sentences(str(tmp_path / "out"), columns=["frames"]).to_pylist()
    clips = sorted((r["frames"][0]["uri"].rsplit("/", 1)[-1], tuple(f["frame"] for f in r["frames"])) for r in table)
    assert clips == [
        ("cut.mp4", (0, 4, 8)),
        ("cut.mp4", (16, 20, 24, 28)),
        ("moving.mp4", (0, 4, 8, 12)),
        ("moving.mp4", (16, 20, 24, 28)),
    ]  # split at the cut; the 1-frame part is dropped
    assert manifest["totals"]["curation"]["removed"] == {"scene_cut": 1, "static_clip": 2}
