"""The main job end to end on the embedded runner: real photos and broken files, every source format,
grouping templates, determinism (also with multi_processing), resume after a kill, retry-failed."""

import contextlib
import dataclasses
import io
import json
import os
import sys
import threading
import time

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image
from resumes import assert_resumed_like_clean, kill_after_first_commit, ledger, rows, slow_job

from lvm_data.cli import main
from lvm_data.items import ItemRef, Part
from lvm_data.job.config import parse_job_text
from lvm_data.job.plan import ResumeError
from lvm_data.media.contract import DecodeSettings
from lvm_data.media.decode import decode_item
from lvm_data.media.samples import package_file, photos
from lvm_data.outcomes import Outcome, Reason
from lvm_data.sentences import registry
from lvm_data.sentences.base import BuildResult, Sentence, Template
from lvm_data.shards.reader import file_metadata, list_markers, read_ledger, read_sentences, sentence_files
from lvm_data.testing import images_source, job_text, write_corpus, write_tar, write_tiny_checkpoint
from lvm_data.tokenizer import load
from pipelines.tokenize import run_job

FIXTURE = os.path.join(os.path.dirname(__file__), "../../../shared/fixtures/vqgan/muse-lvm-small")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("tiny")))


def run(text: str, *beam_args: str, retry: bool = False):
    return run_job(parse_job_text(text), text, list(beam_args), retry=retry)


def direct_codes(tokenizer, uris: list[str], data: list[bytes] | None = None) -> np.ndarray:
    """Codes of each image decoded and encoded outside the pipeline: (len(uris), tokens_per_image)."""
    settings = DecodeSettings(tokenizer.image_size)
    frames = [
        decode_item(ItemRef("s", uri, "u", {"image": Part(uri, blob)}), settings).frames[0].pixels
        for uri, blob in zip(uris, data or [None] * len(uris), strict=True)
    ]
    return tokenizer.encode(np.stack(frames))


def test_photos_and_broken_files_with_the_reference_tokenizer(tmp_path):
    expected = write_corpus(tmp_path / "photos")
    out = tmp_path / "out"
    text = job_text("photos", out, FIXTURE, [images_source("photos", tmp_path / "photos")], shard_size=4)
    (tmp_path / "job.yaml").write_text(text)
    result = CliRunner().invoke(main, ["run", str(tmp_path / "job.yaml")])
    assert result.exit_code == 0, result.output
    assert "8 items: 3 ok, 0 filtered, 5 failed" in result.output
    assert {k.rsplit("/", 1)[-1]: reason for k, (_, reason) in ledger(out).items()} == expected
    tokenizer = load(FIXTURE, device="cpu")
    table = read_sentences(str(out))
    assert table.num_rows == 3
    uris = [r[0]["uri"] for r in table["frames"].to_pylist()]
    direct = direct_codes(tokenizer, uris)  # (3, 256): the photos encoded outside the pipeline
    assert table["tokens"].to_pylist() == direct.tolist()
    got, want = tokenizer.decode(np.array(table["tokens"].to_pylist()[:1])), tokenizer.decode(direct[:1])
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    meta = file_metadata(sentence_files(str(out))[0])
    assert meta["tokenizer_fingerprint"] == tokenizer.fingerprint and meta["codebook_size"] == "8192"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sources"]["photos"]["failed"] == 5 and manifest["sources"]["photos"]["units"] == 2
    assert (out / "job.yaml").read_text() == text


def test_output_loads_with_pyarrow_dataset_and_hugging_face(tmp_path, tiny):
    write_corpus(tmp_path / "photos")
    out = tmp_path / "out"
    run(job_text("j", out, tiny, [images_source("photos", tmp_path / "photos")], shard_size=2))
    table = pads.dataset(str(out / "sentences"), format="parquet").to_table()
    assert table.num_rows == 3 and pa.types.is_uint16(table.schema.field("tokens").type.value_type)
    hf = datasets.load_dataset(
        "parquet", data_dir=str(out / "sentences"), split="train", cache_dir=str(tmp_path / "hf")
    )
    assert hf.num_rows == 3 and all(isinstance(t, int) for t in hf[0]["tokens"]) and len(hf[0]["tokens"]) == 64


def test_same_job_twice_and_with_multi_processing_gives_identical_rows(tmp_path, tiny):
    source = images_source("photos", [str(p) for p in photos("all")[:10]])  # 2 units: one per worker process
    outs = [tmp_path / name for name in ("a", "b", "mp")]
    run(job_text("j", outs[0], tiny, [source], shard_size=5))
    run(job_text("j", outs[1], tiny, [source], shard_size=5))
    run(
        job_text("j", outs[2], tiny, [source], shard_size=5),
        "--direct_num_workers=2",
        "--direct_running_mode=multi_processing",
    )
    first = rows(outs[0])
    assert len(first) == 10
    assert rows(outs[1]) == first and rows(outs[2]) == first
    assert ledger(outs[1]) == ledger(outs[0]) == ledger(outs[2])
    manifest = json.loads((outs[2] / "manifest.json").read_text())
    assert manifest["runner"] == "FnApiRunner(multi_processing, 2 workers)"


class FolderPairs(Template):
    """Test template: items of one folder become 2-image sentences; an odd one out is a leftover."""

    name = "folder_pairs"

    def group_key(self, ref):
        return ref.key.rsplit("/", 2)[-2]

    def build(self, items):
        items = sorted(items, key=lambda d: d.key)
        sentences = [
            Sentence(a.ref.source, self.name, "pair", a.frames + b.frames, [a.key, b.key], a.ref.unit)
            for a, b in zip(items[::2], items[1::2], strict=False)
        ]
        leftover = {items[-1].key: Outcome.filtered(Reason.LEFTOVER)} if len(items) % 2 else {}
        return BuildResult(sentences, leftover)


def test_grouping_template_writes_stable_buckets_and_resumes(tmp_path, tiny, monkeypatch):
    monkeypatch.setitem(registry.TEMPLATES, "folder_pairs", FolderPairs)
    pics = photos("all")
    for folder, chosen in (("a", pics[:3]), ("b", pics[3:5]), ("c", pics[5:9])):
        write_corpus(tmp_path / "in" / folder, chosen, broken=False)
    (tmp_path / "in" / "b" / "zero.png").write_bytes(b"")
    out = tmp_path / "out"
    text = job_text(
        "g", out, tiny, [images_source("pairs", tmp_path / "in", "folder_pairs")], shard_size=4, decode_pool="threads"
    )  # the test's template is registered in this process only
    manifest = run(text)
    markers = list_markers(str(out))
    assert [m["unit"] for m in markers] == ["g000000", "g000001", "g000002"]  # ceil(10 items / 4)
    statuses = ledger(out)
    assert sorted(r for _, r in statuses.values()) == ["empty_file", "leftover"] + ["ok"] * 8
    table = read_sentences(str(out))
    assert table.num_rows == 4 and set(table["n_images"].to_pylist()) == {2}
    assert manifest["totals"]["images"] == 8
    for marker in markers:  # every group's items live in one file, with their ledger rows
        units = set(pq.read_table(out / marker["ledger_file"])["unit"].to_pylist())
        assert units <= {marker["unit"]}
    before = {m["unit"]: m["committed"] for m in markers}
    run(text)
    assert {m["unit"]: m["committed"] for m in list_markers(str(out))} == before
    assert rows(out) == sorted(zip(table["id"].to_pylist(), table["tokens"].to_pylist(), strict=True))


def test_every_source_format(tmp_path, tiny):
    pics = [package_file("skimage", n).read_bytes() for n in ("chelsea.png", "coffee.png", "astronaut.png")]
    write_corpus(tmp_path / "files", photos("heldout")[:2], broken=False)
    (tmp_path / "tars").mkdir()
    write_tar(
        tmp_path / "tars" / "00000.tar",
        [("000.png", pics[0]), ("000.txt", b"cat"), ("001.png", pics[1]), ("002.json", b"{}")],
    )
    write_tar(tmp_path / "tars" / "00001.tar", [])
    pq.write_table(pa.table({"jpg": pa.array([pics[0], None, pics[2]], pa.binary())}), tmp_path / "p.parquet")
    hf = datasets.Dataset.from_dict(
        {"image": [{"bytes": p, "path": None} for p in pics[:2]]},
        features=datasets.Features({"image": datasets.Image()}),
    )
    hf.save_to_disk(str(tmp_path / "hf"))
    sources = [
        images_source("files", tmp_path / "files"),
        {"name": "web", "input": {"format": "webdataset", "paths": str(tmp_path / "tars")}},
        {"name": "pq", "input": {"format": "parquet", "paths": str(tmp_path / "p.parquet"), "column": "jpg"}},
        {"name": "hub", "input": {"format": "hf", "path": str(tmp_path / "hf")}},
    ]
    out = tmp_path / "out"
    manifest = run(job_text("all", out, tiny, sources, shard_size=2))
    got = {name: (t["inputs"], t["ok"], t["failed"], t["units"]) for name, t in manifest["sources"].items()}
    assert got == {"files": (2, 2, 0, 1), "web": (3, 2, 1, 2), "pq": (3, 2, 1, 2), "hub": (2, 2, 0, 1)}
    assert ledger(out)["00000.tar#002"] == ("failed", "not_media")  # keyed relative to the folder entry
    uris = {r["key"]: r["uri"] for r in read_ledger(str(out)).to_pylist()}
    assert uris["00000.tar#002"] == f"{tmp_path}/tars/00000.tar#002"  # the uri: where the sample is
    empty = [m for m in list_markers(str(out), "web") if m["unit"] == "00001"]
    assert empty and empty[0]["counts"]["inputs"] == 0  # a unit with no items still commits
    tokenizer = load(tiny, device="cpu")
    tokens = {r["frames"][0]["uri"]: r["tokens"] for r in read_sentences(str(out)).to_pylist()}
    direct = direct_codes(tokenizer, ["a", "b", "c"], pics).tolist()
    assert tokens[f"{tmp_path}/tars/00000.tar#000.png"] == direct[0]
    assert tokens[f"{tmp_path}/p.parquet#row=2"] == direct[2]
    assert tokens[f"{tmp_path}/hf#train/1"] == direct[1]


def test_img2dataset_parquet_output_with_no_options(tmp_path, tiny):
    """img2dataset's parquet output folder as it writes it: failed downloads are download_failed ledger rows."""
    pics = [package_file("skimage", n).read_bytes() for n in ("chelsea.png", "coffee.png")]
    jpgs = []
    for pic in pics:
        buf = io.BytesIO()
        Image.open(io.BytesIO(pic)).convert("RGB").save(buf, format="JPEG")
        jpgs.append(buf.getvalue())
    folder = tmp_path / "laion"
    folder.mkdir()
    pq.write_table(
        pa.table(
            {
                "key": ["000000000", "000000001", "000000002", "000000003"],
                "jpg": pa.array([jpgs[0], None, jpgs[1], None], pa.binary()),
                "caption": ["a cat", "x", "coffee", "y"],
                "url": [f"http://example.com/{i}.jpg" for i in range(4)],
                "width": [256, None, 256, None],
                "status": ["success", "failed_to_download", "success", "failed_to_resize"],
                "error_message": [None, "<urlopen error timed out>", None, "image too small"],
            }
        ),
        folder / "00000.parquet",
    )
    (folder / "00000_stats.json").write_text(json.dumps({"count": 4, "successes": 2}))
    out = tmp_path / "out"
    manifest = run(
        job_text(
            "i2d", out, tiny, [{"name": "laion", "input": {"format": "parquet", "paths": str(folder)}}], shard_size=10
        )
    )
    totals = manifest["sources"]["laion"]
    assert (totals["inputs"], totals["ok"], totals["failed"]) == (4, 2, 2)
    table = pq.read_table(out / list_markers(str(out))[0]["ledger_file"])
    got = {r["key"]: (r["status"], r["reason"], r["detail"]) for r in table.to_pylist()}
    where = f"{folder}/00000.parquet#row="
    assert got["000000000"][:2] == got["000000002"][:2] == ("ok", "ok")
    assert got["000000001"] == (
        "failed",
        "download_failed",
        f"{where}1: img2dataset status 'failed_to_download': <urlopen error timed out>",
    )
    assert got["000000003"] == (
        "failed",
        "download_failed",
        f"{where}3: img2dataset status 'failed_to_resize': image too small",
    )
    tokens = {r["frames"][0]["uri"]: r["tokens"] for r in read_sentences(str(out)).to_pylist()}
    assert tokens[f"{where}2"] == direct_codes(load(tiny, device="cpu"), ["k"], [jpgs[1]]).tolist()[0]


def test_killed_run_resumes_to_the_same_rows_as_a_clean_run(tmp_path):
    files = [str(p) for p in photos("all")[:10]]
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    run(slow_job("k", clean, files, rate=1000))
    text = slow_job("k", killed, files)
    (tmp_path / "job.yaml").write_text(text)
    committed = kill_after_first_commit(
        [sys.executable, "-m", "lvm_data.cli", "run", str(tmp_path / "job.yaml")], killed
    )
    assert 1 <= committed < 5, "the kill must land after the first and before the last unit"
    before = {m["unit"]: m["committed"] for m in list_markers(str(killed))}
    time.sleep(1.1)  # marker timestamps have one-second resolution: a redone unit would show a later one
    run(text)
    assert_resumed_like_clean(killed, clean, before)


def test_units_commit_as_they_finish_not_at_the_end(tmp_path):
    files = [str(p) for p in photos("all")[:12]]
    out = tmp_path / "out"
    seen = []

    @contextlib.contextmanager
    def watch(_run):
        stop = threading.Event()

        def poll():
            while not stop.wait(0.02):
                seen.append(len(list_markers(str(out))))

        thread = threading.Thread(target=poll)
        thread.start()
        yield
        stop.set()
        thread.join()

    text = slow_job("c", out, files, rate=8)
    run_job(parse_job_text(text), text, [], watch=watch)
    assert len(list_markers(str(out))) == 6
    assert any(0 < n < 6 for n in seen), f"units committed only at the end: {sorted(set(seen))}"
    assert len({n for n in seen if 0 < n < 6}) >= 3, "units commit one by one while the job runs"


def test_retry_failed_redoes_only_failed_items(tmp_path, tiny):
    folder = tmp_path / "in"
    write_corpus(folder, photos("heldout"), broken=False)
    good = package_file("skimage", "astronaut.png").read_bytes()
    (folder / "late.png").write_bytes(good[: len(good) // 3])
    out = tmp_path / "out"
    run(job_text("r", out, tiny, [images_source("photos", folder)], shard_size=2))
    assert ledger(out)["late.png"] == ("failed", "truncated")
    before = {m["unit"]: m for m in list_markers(str(out))}
    old_rows = rows(out)
    (folder / "late.png").write_bytes(good)  # the user repairs the file
    result = CliRunner().invoke(main, ["retry-failed", str(out)])
    assert result.exit_code == 0, result.output
    assert ledger(out)["late.png"] == ("ok", "ok")
    new_rows = rows(out)
    assert len(new_rows) == len(old_rows) + 1 and all(r in new_rows for r in old_rows)
    after = {m["unit"]: m for m in list_markers(str(out))}
    changed = [u for u in after if after[u] != before[u]]
    assert len(changed) == 1 and after[changed[0]]["counts"]["failed"] == 0
    assert json.loads((out / "manifest.json").read_text())["totals"]["failed"] == 0


def test_limit_and_changed_inputs(tmp_path, tiny):
    folder = tmp_path / "in"
    write_corpus(folder, photos("heldout"), broken=False)
    text = job_text("l", tmp_path / "out", tiny, [images_source("photos", folder)], shard_size=2)
    job = parse_job_text(text)
    run_job(dataclasses.replace(job, limit=2), text, [])
    assert len(ledger(tmp_path / "out")) == 2
    with pytest.raises(ResumeError, match="another job configuration"):
        run(text)
    out2 = tmp_path / "out2"
    text2 = job_text("l", out2, tiny, [images_source("photos", folder)], shard_size=2)
    run(text2)
    (folder / "new.png").write_bytes((folder / "chelsea.png").read_bytes())
    with pytest.raises(ResumeError, match="different inputs|does not plan it"):
        run(text2)


def test_progress_moves_while_units_are_in_flight_and_markers_time_each_step(tmp_path):
    """One 12-image unit on a stand-in encoder at 4 images/s (3 s; in-flight files are written every second): the
    progress shows its items before it commits; its marker times read, decode, encode and write, and the manifest
    sums them with the encoder's busy share."""
    from lvm_data.job.progress import Progress

    files = [str(p) for p in photos("all")[:12]]
    out = tmp_path / "out"
    text = job_text("p", out, "standin:4", [images_source("photos", files)], shard_size=12, batch_size=2)
    snaps = []

    @contextlib.contextmanager
    def watch(run):
        with Progress(run, snaps.append, interval=0.2):
            yield

    manifest = run_job(parse_job_text(text), text, [], watch=watch)
    in_flight = [s for s in snaps if "units 0/1" in s.detail and s.done > 0]
    assert in_flight, f"progress moved only at the commit: {[s.line() for s in snaps]}"
    assert snaps[-1].finished and (snaps[-1].done, snaps[-1].total) == (12, 12)
    assert not list((out / "progress").rglob("*.json")), "in-flight files are removed when the run ends"
    timings = list_markers(str(out))[0]["timings"]
    assert timings["encode_s"] >= 0.8 * 12 / 4  # the stand-in sleeps 1/4 s per image
    assert all(timings[f"{step}_s"] > 0 for step in ("read", "decode", "write"))
    assert timings["wall_s"] >= timings["encode_s"]
    total = manifest["timings"]
    assert total["units"] == 1 and total["encode_s"] == timings["encode_s"]
    assert 0.3 < total["encoder_busy_share"] <= 1.0
    from lvm_data.audit import render_text, run_audit

    audited = run_audit([str(out)])
    assert audited.timings == total and "time per step over 1 units: read " in render_text(audited)
