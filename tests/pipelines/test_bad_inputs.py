"""Every kind of bad input (tests/pipelines/badinputs.py: 53 kinds) through one real job: each ends as exactly
the ledger row it must, no input ends the job, and ok rows hold the expected pixels. Run with
LVM_DATA_BAD_INPUT_TABLE=1 and -s to print the kind / expected / actual table."""

import os

import numpy as np
import pytest
from badinputs import MAX_ITEM_BYTES, MAX_PIXELS, SIZE, build

from lvm_data.items import ItemRef, Part
from lvm_data.job.config import parse_job_text
from lvm_data.media.contract import DecodeSettings
from lvm_data.media.decode import decode_item
from lvm_data.shards.reader import read_ledger, read_sentences
from lvm_data.testing import job_text, write_tiny_checkpoint
from lvm_data.tokenizer import load
from pipelines.tokenize import run_job


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    tiny = str(write_tiny_checkpoint(root / "tiny"))
    kinds, sources = build(root / "inputs")
    text = job_text(
        "bad", root / "out", tiny, sources, shard_size=64, max_item_bytes=MAX_ITEM_BYTES, max_pixels=MAX_PIXELS
    )
    manifest = run_job(parse_job_text(text), text, [])
    ledger = read_ledger(str(root / "out")).to_pylist()
    sentences = {r["id"]: r for r in read_sentences(str(root / "out"), columns=["id", "tokens"]).to_pylist()}
    return kinds, ledger, sentences, manifest, load(tiny)


def rows_of(kind, ledger):
    return [
        r
        for r in ledger
        if r["source"] == kind.source and (r["uri"].endswith(kind.marker) if kind.at_end else kind.marker in r["uri"])
    ]


def actual(kind, ledger) -> str:
    rows = rows_of(kind, ledger)
    return "no row of its own" if not rows else "; ".join(f"{r['status']}/{r['reason']}" for r in rows)


def test_there_are_at_least_40_kinds(corpus):
    kinds = corpus[0]
    assert len(kinds) >= 40 and len({k.name for k in kinds}) == len(kinds)


def test_every_kind_ends_as_its_expected_ledger_row(corpus):
    kinds, ledger, _, manifest, _ = corpus
    table = [
        (k.name, "no row of its own" if k.expected is None else "/".join(k.expected), actual(k, ledger)) for k in kinds
    ]
    if os.environ.get("LVM_DATA_BAD_INPUT_TABLE"):
        print("\n| kind | expected | actual |\n|---|---|---|")
        print("\n".join(f"| {name} | {want} | {got} |" for name, want, got in table))
    wrong = [row for row in table if row[1] != row[2]]
    assert not wrong, wrong
    matched = [r for k in kinds for r in rows_of(k, ledger)]
    assert sorted(map(id, matched)) == sorted(map(id, ledger)), "every ledger row belongs to exactly one kind"
    for name, totals in manifest["sources"].items():
        assert totals["inputs"] == totals["ok"] + totals["filtered"] + totals["failed"], name


def test_ok_rows_hold_the_expected_pixels(corpus):
    kinds, ledger, sentences, _, tokenizer = corpus
    checked = 0
    for kind in kinds:
        if kind.expected != ("ok", "ok") or kind.data is None:
            continue
        (row,) = rows_of(kind, ledger)
        frame = (
            decode_item(
                ItemRef(kind.source, row["key"], "u", {"image": Part(row["uri"], data=kind.data)}), DecodeSettings(SIZE)
            )
            .frames[0]
            .pixels
        )
        reference = kind.reference()
        assert np.abs(frame.astype(int) - reference.astype(int)).mean() < 1.0, kind.name  # Pillow vs lvm-data
        (sid,) = row["sentence_ids"]
        assert np.array_equal(np.asarray(sentences[sid]["tokens"]), tokenizer.encode(frame[None]).reshape(-1)), (
            kind.name
        )
        checked += 1
    assert checked >= 18
