"""A real job with hostile inputs finishes under a memory limit, with a ledger row for each input (issue 15).

The job is `benchmarks/hostile_memory.py` (the command that prints the figures) run as a subprocess: a folder with
two photos, a 4000 x 4000 RGBA PNG under max_pixels, a gray PNG over it and a sparse 1 GiB file, and a gzip'ed tar
whose middle member is 128 MiB of zeros, with max_item_bytes 64 MiB. Its job process (decode in threads, so the
whole job is that one process) runs `pipelines.tokenize.run_job` under RLIMIT_AS.

Why RLIMIT_AS relative to the process once loaded: importing torch, Beam and pyarrow maps ~2.3 GiB of address space
(of which ~0.4 GiB resident) on this machine, and that figure depends on the machine's libraries and cores, so an
absolute limit would measure them, not the job. The child sets the limit once the tokenizer is loaded, to its
address space then plus HEADROOM (with MALLOC_ARENA_MAX=2 and OMP_NUM_THREADS=2, so that glibc's per-thread arenas
and torch's per-core threads do not make the address space depend on the core count). RLIMIT_DATA would need the
same correction. The job measured 210 MiB of address space and ~150 MiB of RSS above that point (574 MiB peak
RSS, 430 once loaded). Before issue 15 it needed more than HEADROOM: under the same limit the RGBA composite (64
bytes a pixel, 1 GiB here) and the whole read of the 1 GiB file failed with MemoryError (as decode_error and
internal_error rows, the tar member as not_media; 1210 MiB peak RSS). Besides the limit, the peak RSS (VmHWM from
the child's /proc status) is asserted against the per-item bound: 8 bytes a pixel of the largest image, plus an
allowance for the job's own growth (28 MiB for the same job with harmless inputs).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lvm_data.items import DEFAULT_MAX_ITEM_BYTES
from lvm_data.job.config import JobConfigError, config_hash, parse_job_text, source_options
from lvm_data.testing import images_source, job_text

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "hostile_memory.py"
HEADROOM_MIB = 768
RGBA_SIDE = 4000


def test_hostile_job_finishes_under_a_memory_limit_with_a_row_for_every_input(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--workdir",
            str(tmp_path),
            "--json",
            "--rgba-side",
            str(RGBA_SIDE),
            "--member-mib",
            "128",
            "--file-mib",
            "1024",
            "--max-item-mib",
            "64",
            "--max-pixels",
            "40000000",
            "--headroom-mib",
            str(HEADROOM_MIB),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["returncode"] == 0, result["stderr_tail"]
    ledger = result["ledger"]
    assert {name: row[1] for name, row in ledger.items()} == {
        "photo-0.jpg": "ok",
        "photo-1.png": "ok",
        "rgba.png": "ok",
        "over-max-pixels.png": "too_large",
        "sparse.png": "file_too_large",
        "000000": "ok",
        "000001": "file_too_large",
        "000002": "ok",
    }
    assert "4096x9766 pixels exceeds the limit of 40000000" in ledger["over-max-pixels.png"][2]
    assert "1073741824 bytes, over the limit of 67108864 bytes (max_item_bytes)" in ledger["sparse.png"][2]
    assert "member 000001.png has 134217728 bytes" in ledger["000001"][2]
    grown_mib = result["rss_peak_mib"] - result["rss_start_mib"]
    assert grown_mib < 8 * RGBA_SIDE**2 / 2**20 + 128, result  # 8 bytes a pixel (122 MiB) + the job's own growth
    assert result["vm_peak_mib"] - result["vm_start_mib"] <= HEADROOM_MIB


def job(tmp_path, **top):
    return parse_job_text(job_text("j", tmp_path / "out", "builtin:tiny", [images_source("s", tmp_path / "in")], **top))


def test_max_item_bytes_is_a_job_field_hashed_only_when_set(tmp_path):
    default, same, lower = (
        job(tmp_path),
        job(tmp_path, max_item_bytes=DEFAULT_MAX_ITEM_BYTES),
        job(tmp_path, max_item_bytes=2**20),
    )
    assert default.max_item_bytes == DEFAULT_MAX_ITEM_BYTES and lower.max_item_bytes == 2**20
    assert config_hash(default, "f") == config_hash(same, "f") != config_hash(lower, "f")  # old outputs keep theirs
    assert source_options(lower, lower.sources[0])["max_item_bytes"] == 2**20  # container sources check members
    with pytest.raises(JobConfigError, match="max_item_bytes"):
        job(tmp_path, max_item_bytes=0)
