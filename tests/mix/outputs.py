"""Synthetic job outputs for mix tests: committed units of random codes, with a manifest, as a job writes them."""

import json
from pathlib import Path

import numpy as np

from lvm_data.sentences.base import sentence_id
from lvm_data.shards.writer import SentenceRow, ShardInfo, UnitCommit, commit_unit

TPI, CODEBOOK, FINGERPRINT = 4, 64, "fp-test"


def fake_output(
    root: Path,
    source: str,
    sentences: int,
    n_images: int = 1,
    units: int = 2,
    template: str = "single",
    task: str = "image",
    fingerprint: str = FINGERPRINT,
    seed: int = 0,
) -> str:
    """A job output with `sentences` sentences of `n_images` images over `units` units; returns its path."""
    rng = np.random.default_rng(seed)
    info = ShardInfo(fingerprint, CODEBOOK, TPI, f"hash-{root.name}")
    per_unit = -(-sentences // units)
    for u in range(units):
        rows = []
        for i in range(u * per_unit, min(sentences, (u + 1) * per_unit)):
            key = f"{source}/{i:06d}.jpg"
            rows.append(
                SentenceRow(
                    sentence_id(source, template, [key], {}, []),
                    source,
                    template,
                    task,
                    n_images,
                    rng.integers(0, CODEBOOK, n_images * TPI).astype(np.uint16),
                    [(key, f, "image") for f in range(n_images)],
                    [key],
                )
            )
        commit_unit(UnitCommit(str(root), source, f"{u:05d}", "spec", info), rows, [])
    (root / "manifest.json").write_text(json.dumps({"job": {"name": root.name, "config_hash": info.job_config_hash}}))
    return str(root)
