"""A job output's dataset card, OUT/README.md, so that `datasets.load_dataset(OUT)` loads its sentences.

Without it `load_dataset` globs every Parquet file under OUT and fails: sentence and ledger files have other
columns. The card's YAML `configs:` header names the files of each config (Hugging Face's "manual
configuration"): `default` is the sentences (one `train` split: the job has no splits of its own), `ledger`
the ledger, one row per input item. Features come from the files' Arrow schema, so they are typed as written
(`tokens` a list of uint16, `n_images` int32, ...). The card is a function of the job's name and sources
only: a retry or resume rewrites the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from lvm_data import storage
from lvm_data.shards import layout

CARD = "README.md"


def job_card(name: str, sources: Sequence[str]) -> str:
    """README.md text: the `configs:` header, then a few lines on what the rows hold."""
    listed = ", ".join(f"`{s}`" for s in sorted(sources)) or "none"
    return (
        "---\nconfigs:\n"
        "  - config_name: default\n    data_files:\n      - split: train\n        path: sentences/**/*.parquet\n"
        "  - config_name: ledger\n    data_files:\n      - split: train\n        path: ledger/**/*.parquet\n"
        f"---\n\n# {name}\n\n"
        "Visual sentences written by `lvm-data run` (see manifest.json for the tokenizer and the counts, job.yaml "
        f"for the job as run). Sources: {listed}.\n\n"
        "- `datasets.load_dataset(OUT)`: the sentences; `tokens` (VQGAN codes, image-major, `n_images` x tokens "
        "per image), `n_images`, `id`, `source`, `template`, `task` and `frames` (where each image came from).\n"
        '- `datasets.load_dataset(OUT, "ledger")`: one row per input item, with its status and reason.\n'
    )


def write_job_card(out: str, name: str, sources: Sequence[str]) -> None:
    storage.write_bytes(layout.join(out, CARD), job_card(name, sources).encode())
