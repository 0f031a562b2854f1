"""Kill-and-resume helpers shared by the embedded and the portable runner's tests."""

import json
import os
import signal
import subprocess
import time

import pyarrow.parquet as pq

from lvm_data.shards.reader import list_markers, read_ledger, read_sentences
from lvm_data.testing import images_source, job_text


def rows(out) -> list[tuple[str, list[int]]]:
    table = read_sentences(str(out), columns=["id", "tokens"])
    return sorted(zip(table["id"].to_pylist(), table["tokens"].to_pylist(), strict=True))


def ledger(out) -> dict[str, tuple[str, str]]:
    table = read_ledger(str(out))
    keys = table["key"].to_pylist()
    assert len(keys) == len(set(keys)), "one ledger row per item"
    return dict(
        zip(
            table["key"].to_pylist(),
            zip(table["status"].to_pylist(), table["reason"].to_pylist(), strict=True),
            strict=True,
        )
    )


def slow_job(name: str, out, files, rate: float = 4.0) -> str:
    """A job whose encoder is the device stand-in at `rate` images/s: one two-image unit per batch, so units
    commit one after another, about 2 / rate seconds apart (the codes do not depend on the rate)."""
    return job_text(name, out, f"standin:{rate:g}", [images_source("photos", files)], shard_size=2, batch_size=2)


def kill_after_first_commit(command: list[str], out) -> int:
    """Run `command`, SIGKILL its process group once a unit of `out` is committed; the units committed then."""
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list_markers(str(out)) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return len(list_markers(str(out)))


def assert_resumed_like_clean(killed, clean, committed_before: dict) -> None:
    for path in killed.rglob("*.parquet"):  # whatever a reader can see is a whole file
        if not path.name.startswith((".", "_")):
            pq.read_table(path)
    assert rows(killed) == rows(clean)
    assert ledger(killed) == ledger(clean)
    after = {m["unit"]: m["committed"] for m in list_markers(str(killed))}
    assert all(after[unit] == stamp for unit, stamp in committed_before.items()), "committed units are not redone"
    assert not [p for p in killed.rglob(".tmp-*")]
    assert (
        json.loads((killed / "manifest.json").read_text())["totals"]
        == json.loads((clean / "manifest.json").read_text())["totals"]
    )
