"""Where things live under a job's output folder (local path or gs:// prefix).

OUT/sentences/source=NAME/part-UNIT.parquet   visual sentences, one file per unit
OUT/ledger/source=NAME/part-UNIT.parquet      one row per input item of that unit
OUT/units/source=NAME/UNIT.json               commit marker, written after both files
OUT/manifest.json                             run manifest, written last
OUT/job.yaml                                  the job file as run
OUT/README.md                                 dataset card: `datasets.load_dataset(OUT)` (lvm_data.shards.card)
"""

from __future__ import annotations

MANIFEST = "manifest.json"
JOB_FILE = "job.yaml"


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


def sentences_file(source: str, unit: str) -> str:
    return f"sentences/source={source}/part-{unit}.parquet"


def ledger_file(source: str, unit: str) -> str:
    return f"ledger/source={source}/part-{unit}.parquet"


def marker_file(source: str, unit: str) -> str:
    return f"units/source={source}/{unit}.json"
