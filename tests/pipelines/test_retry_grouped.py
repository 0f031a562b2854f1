"""retry-failed on grouping templates (issue 15): once the broken files are repaired, a retry gives exactly what a
clean run on the good files gives (ledger, sentences, totals); buckets without a failure keep their files."""

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from resumes import ledger, rows

from lvm_data.cli import main
from lvm_data.job.config import parse_job_text
from lvm_data.media import decode
from lvm_data.outcomes import ItemError, Reason
from lvm_data.shards.reader import list_markers, read_ledger
from lvm_data.testing import job_text, uint8_image, write_tar, write_tiny_checkpoint
from pipelines.tokenize import run_job

N_ITEMS = 13


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("tiny")))


def png(pixels: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def photo(i: int) -> bytes:
    return png(uint8_image(np.random.default_rng(i), 24, 40))


def paired_files(root, kinds) -> dict:
    """rgb/NN.png with depth/NN.npy and/or seg/NN.png of the same size."""
    files = {}
    for i in range(N_ITEMS):
        files[root / "rgb" / f"{i:02d}.png"] = photo(i)
        if "depth" in kinds:
            files[root / "depth" / f"{i:02d}.npy"] = npy(np.linspace(1, 2 + i, 24 * 40, np.float32).reshape(24, 40))
        if "segmentation" in kinds:
            ids = (np.arange(24 * 40).reshape(24, 40) % (i + 2)).astype(np.uint8)
            files[root / "seg" / f"{i:02d}.png"] = png(ids, "L")
    return files


def class_files(root) -> dict:
    return {root / ("cats", "dogs", "owls")[i % 3] / f"{i:02d}.png": photo(i) for i in range(N_ITEMS)}


def tar_files(root) -> dict:
    """Two webdataset shards of labelled samples (category by json.label)."""
    out = {}
    for shard in range(2):
        members = []
        for i in range(shard * 7, shard * 7 + 7):
            members += [(f"{i:03d}.png", photo(i)), (f"{i:03d}.json", json.dumps({"label": str(i % 2)}).encode())]
        scratch = write_tar(root.parent / "scratch.tar", members)
        out[root / f"{shard:05d}.tar"] = scratch.read_bytes()
        scratch.unlink()
    return out


def paired(root, kinds):
    return {
        "format": "paired",
        "images": str(root / "rgb"),
        "annotations": {k: str(root / ("seg" if k == "segmentation" else k)) for k in kinds},
    }


CASES = {  # name -> (input files, input, template)
    "pairs": (
        lambda r: paired_files(r, ["depth"]),
        lambda r: paired(r, ["depth"]),
        {"name": "pairs", "pairs": 2, "min_pairs": 2},
    ),
    "multi_annotation": (
        lambda r: paired_files(r, ["depth", "segmentation"]),
        lambda r: paired(r, ["depth", "segmentation"]),
        {"name": "multi_annotation"},
    ),
    "category": (
        class_files,
        lambda r: {"format": "images", "paths": str(r)},
        {"name": "category", "label": "folder", "shot_size": 2},
    ),
    "derived": (
        class_files,
        lambda r: {"format": "images", "paths": str(r)},
        {"name": "derived", "task": "colorization", "pairs": 2, "min_pairs": 2},
    ),
    "category_webdataset": (
        tar_files,
        lambda r: {"format": "webdataset", "paths": str(r)},
        {"name": "category", "label": "json.label", "shot_size": 2},
    ),
}


def broken(files: dict) -> dict:
    """Broken versions of a few of the files: truncated images and tars, garbage arrays."""
    chosen = [p for p in sorted(files) if p.suffix == ".tar"][:1] or sorted(files)[1:8:3]
    if not any(p.suffix == ".tar" for p in chosen):
        chosen += [p for p in sorted(files) if p.suffix == ".npy"][5:6]

    def cut(path):  # a tar is cut inside a member's data: cut inside a header, tarfile reads a shorter tar
        return files[path][: len(files[path]) // 2 + (600 if path.suffix == ".tar" else 0)]

    return {p: (b"not an array" if p.suffix == ".npy" else cut(p)) for p in chosen}


def write(files: dict) -> None:
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def totals(out) -> dict:
    return json.loads((out / "manifest.json").read_text())["totals"]


def run(out, tiny, source, **top) -> None:
    text = job_text("r", out, tiny, [source], shard_size=4, **top)
    run_job(parse_job_text(text), text, [])


def retry_failed(out) -> None:
    result = CliRunner().invoke(main, ["retry-failed", str(out)])
    assert result.exit_code == 0, result.output


def assert_like_clean(out, clean) -> None:
    assert ledger(out) == ledger(clean)
    assert rows(out) == rows(clean)
    assert totals(out) == totals(clean)


def failures(out) -> set:
    return {k for k, (status, _) in ledger(out).items() if status == "failed"}


def clean_run(tmp_path, tiny, case):
    """The case's good files written and run once: (files, source, the clean output, the output to break)."""
    make_files, make_input, template = CASES[case]
    root = tmp_path / "in"
    files = make_files(root)
    write(files)
    source = {"name": "s", "input": make_input(root), "template": template}
    clean, retried = tmp_path / "clean", tmp_path / "retried"
    run(clean, tiny, source)
    return files, source, clean, retried


@pytest.mark.parametrize("case", sorted(CASES))
def test_retry_failed_after_repairing_the_files_gives_what_a_clean_run_gives(tmp_path, tiny, case):
    files, source, clean, retried = clean_run(tmp_path, tiny, case)
    write(broken(files))  # the same paths, broken
    run(retried, tiny, source)
    assert failures(retried) and ledger(retried) != ledger(clean)
    write(files)  # the user repairs the files (in place: their units' digests change, so those are redone whole)
    retry_failed(retried)
    assert_like_clean(retried, clean)
    after = {m["unit"]: m for m in list_markers(str(retried))}
    retry_failed(retried)  # nothing failed: nothing to redo
    assert {m["unit"]: m for m in list_markers(str(retried))} == after


@pytest.mark.parametrize("case", ["pairs", "category"])
def test_retry_failed_after_passing_failures_redoes_only_the_buckets_with_failed_items(
    tmp_path, tiny, case, monkeypatch
):
    """Failures that pass without a file changing (a timeout): a bucket with a failed item is rebuilt whole and
    replaces its files; the other buckets keep theirs."""
    files, source, clean, retried = clean_run(tmp_path, tiny, case)
    slow = {str(p) for p in sorted(files) if "rgb" in p.parts or p.parent.name in ("cats", "dogs", "owls")}
    slow = set(sorted(slow)[1:8:3])
    image = decode.DECODERS["image"]

    def hangs(part, role, settings):
        if part.uri in slow:
            raise ItemError(Reason.TIMEOUT, f"{part.uri}: took too long")
        return image(part, role, settings)

    with monkeypatch.context() as patch:
        patch.setitem(decode.DECODERS, "image", hangs)
        run(retried, tiny, source, decode_pool="threads")  # the stand-in decoder runs in this process only
    assert len(failures(retried)) == len(slow) == 3
    before = {m["unit"]: m for m in list_markers(str(retried))}
    retry_failed(retried)
    assert_like_clean(retried, clean)
    after = {m["unit"]: m for m in list_markers(str(retried))}
    untouched = [u for u, m in before.items() if m["counts"]["failed"] == 0]
    redone = [u for u, m in before.items() if m["counts"]["failed"]]
    assert untouched and all(after[u] == before[u] for u in untouched)
    assert redone and all(after[u] != before[u] for u in redone)  # a new marker ("committed" has whole seconds:
    # a quick retry may commit within the second of the run before it)


def test_retry_failed_with_token_space_dedup_decides_rebuilt_sentences_as_a_clean_run(tmp_path, tiny, monkeypatch):
    """A rebuilt bucket's old sentence signatures take no part in the decision: its sentences are new again."""
    root = tmp_path / "in"
    same = paired_files(root / "x", ["depth"])
    files = {p: same[root / "x" / p.parent.name / f"00{p.suffix}"] for p in paired_files(root, ["depth"])}
    write(files)  # every item the same image: one-pair sentences that are exact duplicates of each other
    source = {
        "name": "s",
        "input": paired(root, ["depth"]),
        "template": {"name": "pairs", "pairs": 1},
        "filters": ["duplicate_sentences"],
    }
    clean, retried = tmp_path / "clean", tmp_path / "retried"
    run(clean, tiny, source)
    rows_ = read_ledger(str(clean)).to_pylist()
    survivor = next(r for r in rows_ if r["status"] == "ok")
    assert sum(r["reason"] == "duplicate_sentence" for r in rows_) == len(rows_) - 1
    mates = sorted(r["key"] for r in rows_ if r["unit"] == survivor["unit"] and r is not survivor)
    slow = {f"/{mates[0]}.png", f"/{next(r['key'] for r in rows_ if r['unit'] != survivor['unit'])}.png"}
    image = decode.DECODERS["image"]

    def hangs(part, role, settings):  # the survivor's bucket is rebuilt: its old signature must not compete
        if part.uri.endswith(tuple(slow)):
            raise ItemError(Reason.TIMEOUT, f"{part.uri}: took too long")
        return image(part, role, settings)

    with monkeypatch.context() as patch:
        patch.setitem(decode.DECODERS, "image", hangs)
        run(retried, tiny, source, decode_pool="threads")
    assert len(failures(retried)) == 2
    retry_failed(retried)
    assert_like_clean(retried, clean)
