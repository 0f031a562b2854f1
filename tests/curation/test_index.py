import dataclasses

import pytest

from lvm_data.curation import store
from lvm_data.curation.config import NearDuplicates
from lvm_data.curation.index import ItemSignature, decide
from lvm_data.curation.planted import score, write_planted
from lvm_data.job.config import parse_job_text
from lvm_data.job.dedup_index import build_local, is_current
from lvm_data.job.runs import open_run
from lvm_data.media.samples import photos
from lvm_data.testing import images_source, job_text, write_tiny_checkpoint
from lvm_data.tokenizer import load


def sig(source, key, digest=None, phash=None, unit="u0") -> ItemSignature:
    return ItemSignature(source, key, unit, f"/{source}/{key}", digest, phash)


def test_exact_groups_keep_the_first_id_across_sources():
    sigs = [sig("b", "x", "d1"), sig("a", "y", "d1"), sig("a", "z", "d2"), sig("c", "w", "d1", unit="u7")]
    removals = decide(sigs, None)
    assert [(r.source, r.key, r.read_unit, r.reason) for r in removals] == [
        ("b", "x", "u0", "duplicate"),
        ("c", "w", "u7", "duplicate"),
    ]
    assert removals[0].detail == "same decoded pixels as /a/y (source a), which is kept"


def test_near_duplicates_among_exact_survivors_only():
    near = NearDuplicates(max_distance=3)
    sigs = [
        sig("a", "1", "d1", 0b0000),
        sig("a", "2", "d1", 0b0000),  # exact pair
        sig("a", "3", None, 0b0111),
        sig("a", "4", None, 0b1111_0000_0000),
        sig("a", "5", None, 0b1111),
    ]
    removals = {r.key: r for r in decide(reversed(sigs), near)}
    assert set(removals) == {"2", "3", "5"}
    assert removals["2"].reason == "duplicate"
    assert removals["3"].detail.startswith("phash distance 3 from /a/1 (source a)")
    assert removals["5"].detail.startswith("phash distance 1 from /a/3")  # nearest earlier neighbour, though removed


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("tiny")))


def test_local_index_on_planted_copies(tmp_path, tiny):
    planted = write_planted(
        tmp_path / "corpus", photos("heldout"), copies=("exact", "jpeg", "resized", "crop1"), junk=True
    )
    patterns = tmp_path / "blocked.txt"
    patterns.write_text("*/zz-banned*\n")
    filters = [
        "bounds",
        "low_variance",
        {"blocklist": {"pattern_files": [str(patterns)]}},
        "duplicates",
        "near_duplicates",
    ]
    sources = [
        {**images_source("photos", planted.photos), "filters": filters},
        {**images_source("reposts", planted.reposts), "filters": ["duplicates", "near_duplicates"]},
    ]
    job = parse_job_text(job_text("planted", tmp_path / "out", tiny, sources, shard_size=5))
    run = open_run(job, load(tiny, device="cpu"))
    marker = build_local(run)
    assert is_current(run)
    assert not is_current(dataclasses.replace(run, context=dataclasses.replace(run.context, config_hash="other")))
    fewer = dataclasses.replace(
        run,
        plans={
            **run.plans,
            "reposts": dataclasses.replace(
                run.plans["reposts"], digests={u: "changed" for u in run.plans["reposts"].digests}
            ),
        },
    )
    assert not is_current(fewer)  # other inputs: the index is rebuilt
    patterns.write_text("*/zz-banned*\n*/coffee*\n")
    assert not is_current(run)  # so is it when a blocklist file changes
    assert marker["candidates"] == 3 + 12  # junk never becomes a candidate
    assert marker["removed"] == {"duplicate": 3, "near_duplicate": 9}
    removed = {}
    for plan in run.plans.values():
        for r in plan.read_units:
            removed.update(
                {
                    key.rsplit("/", 1)[-1]: reason
                    for key, (reason, _) in store.read_removals(job.output, r.source, r.unit.id).items()
                }
            )
    result = score(planted, {name: removed.get(name, "ok") for name in planted.expected})
    assert result["reasons"]["dedup"] == {"expected": 12, "removed": 12, "correct": 12, "precision": 1.0, "recall": 1.0}
    assert result["copies"] == {"crop1": 1.0, "exact": 1.0, "jpeg": 1.0, "resized": 1.0}
