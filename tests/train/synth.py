"""Small sentence shards for the trainer's tests, written with pyarrow and the sentence Arrow schema."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors.torch import save_file

from lvm_data.shards import layout
from lvm_data.shards.schema import arrow_schema, file_metadata, schema_version

FINGERPRINT = "f" * 64


def sentence_id(source: str, i: int) -> str:
    return hashlib.blake2b(f"{source}/{i}".encode(), digest_size=16).hexdigest()


def write_shard(
    path: Path,
    source: str,
    sentences: list[np.ndarray],
    *,
    codebook: int,
    tpi: int,
    row_group_size: int = 4,
    fingerprint: str = FINGERPRINT,
    first: int = 0,
) -> list[str]:
    """One sentence file; sentence k gets the id of (source, first + k). Returns the ids."""
    ids = [sentence_id(source, first + k) for k in range(len(sentences))]
    n_images = [len(s) // tpi for s in sentences]
    table = pa.table(
        {
            "id": ids,
            "source": [source] * len(ids),
            "template": ["video"] * len(ids),
            "task": ["video"] * len(ids),
            "n_images": pa.array(n_images, pa.int32()),
            "tokens": pa.array([s.astype(np.uint16) for s in sentences], pa.list_(pa.uint16())),
            "frames": [[{"uri": f"{source}.mp4", "frame": f, "role": "frame"} for f in range(n)] for n in n_images],
        },
        schema=arrow_schema("sentence"),
    )
    meta = file_metadata(
        schema_version=schema_version(),
        tokenizer_fingerprint=fingerprint,
        codebook_size=codebook,
        tokens_per_image=tpi,
        job_config_hash="0" * 16,
        source=source,
        unit=path.stem,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(meta), path, row_group_size=row_group_size)
    return ids


def random_sentences(rng: np.random.Generator, n: int, codebook: int, tpi: int, images=(1, 3)) -> list[np.ndarray]:
    return [rng.integers(0, codebook, size=int(rng.integers(images[0], images[1] + 1)) * tpi) for _ in range(n)]


def repeating_clips(
    rng: np.random.Generator, n: int, images: int = 3, tpi: int = 8, changed: int = 2
) -> list[np.ndarray]:
    """Clips of `images` images of `tpi` codes (codebook 64); each later image redraws the previous one's first
    `changed` codes and keeps the rest in place."""

    def clip() -> np.ndarray:
        frames = [rng.integers(0, 64, tpi)]
        for _ in range(images - 1):
            frame = frames[-1].copy()
            frame[:changed] = rng.integers(0, 64, changed)
            frames.append(frame)
        return np.concatenate(frames)

    return [clip() for _ in range(n)]


def random_corpus(
    out: Path,
    *,
    sources=("alpha", "beta"),
    files=2,
    per_file=10,
    codebook=64,
    tpi=8,
    row_group_size=4,
    seed=0,
    fingerprint=FINGERPRINT,
) -> dict[str, list[str]]:
    """OUT/sentences/source=NAME/part-NNNNN.parquet with random codes; returns the ids per source."""
    rng = np.random.default_rng(seed)
    ids: dict[str, list[str]] = {}
    for source in sources:
        for f in range(files):
            path = out / layout.sentences_file(source, f"{f:05d}")
            ids.setdefault(source, []).extend(
                write_shard(
                    path,
                    source,
                    random_sentences(rng, per_file, codebook, tpi),
                    codebook=codebook,
                    tpi=tpi,
                    row_group_size=row_group_size,
                    fingerprint=fingerprint,
                    first=f * per_file,
                )
            )
    return ids


def structured_corpus(out: Path, *, sentences=200, codebook=64, tpi=16, images=4, seed=0) -> Path:
    """Codes with context to learn: each code has two possible successors (a sparse Markov chain), and
    every image repeats the one before it (a still 'video'). Unigram entropy is near ln(codebook)."""
    rng = np.random.default_rng(seed)
    successors = rng.integers(0, codebook, size=(codebook, 2))
    rows = []
    for _ in range(sentences):
        first = [int(rng.integers(codebook))]
        for _ in range(tpi - 1):
            first.append(int(successors[first[-1], rng.integers(2)]))
        rows.append(np.tile(np.asarray(first), images))
    half = sentences // 2
    for k, (source, part) in enumerate((("still", rows[:half]), ("still2", rows[half:]))):
        write_shard(
            out / layout.sentences_file(source, "00000"),
            source,
            part,
            codebook=codebook,
            tpi=tpi,
            row_group_size=16,
            first=k * half,
        )
    return out


def tiny_tokenizer(folder: Path, codebook: int = 64) -> Path:
    """A random open-muse-format VQGAN: 32x32 images, 8x8 = 64 codes per image."""
    from lvm_data.tokenizer.model import VQGAN, VQGANConfig

    cfg = VQGANConfig(
        resolution=32,
        hidden_channels=32,
        channel_mult=(1, 1, 1),
        num_res_blocks=1,
        z_channels=8,
        quantized_embed_dim=8,
        num_embeddings=codebook,
    )
    torch.manual_seed(0)
    model = VQGAN(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"_class_name": "VQGANModel", **cfg.to_dict()}))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    return folder


def split_keys(out: Path) -> dict[str, str]:
    """Sentence id -> its split key (lvm_data.train.shards.content_key) for every shard under OUT."""
    import pyarrow.parquet as pq

    from lvm_data.train.shards import content_key

    keys = {}
    for path in sorted(Path(out).rglob("*.parquet")):
        table = pq.read_table(path, columns=["id", "tokens"])
        for sid, tokens in zip(table.column("id").to_pylist(), table.column("tokens").to_pylist(), strict=True):
            keys[sid] = content_key(np.asarray(tokens, dtype=np.uint16))
    return keys


def small_mix(root: Path, *, shard_bytes: int = 120, validation: float = 0.2, seed: int = 3) -> Path:
    """A finished mix (`lvm-data mix`) of two synthetic job outputs (tests.mix.outputs: codebook 64, 4 codes per
    image): about 60 train rows over several shards, in the mix's order, and a validation split. Seconds."""
    from lvm_data.mix.config import parse_mix
    from pipelines.mix import run_mix
    from tests.mix.outputs import fake_output

    alpha = fake_output(root / "alpha", "alpha", 40, n_images=2, seed=1)
    beta = fake_output(root / "beta", "beta", 30, n_images=1, seed=2)
    config = parse_mix(
        {
            "name": "small",
            "output": str(root / "mix"),
            "seed": seed,
            "validation": validation,
            "shard_bytes": shard_bytes,
            "parts": [{"name": "a", "inputs": [alpha], "weight": 0.6}, {"name": "b", "inputs": [beta], "weight": 0.4}],
        }
    )
    run_mix(config, None, [])
    return root / "mix"


def mix_rows(mix: Path, split: str = "train") -> list[tuple[int, int, str, np.ndarray]]:
    """(shard, row, sentence id, codes) of a mix's split in its order: the files by name, rows top to bottom."""
    rows = []
    for shard, path in enumerate(sorted((mix / split).glob("part-*.parquet"))):
        table = pq.read_table(path, columns=["sentence_id", "tokens"])
        for row, (sid, tokens) in enumerate(
            zip(table.column("sentence_id").to_pylist(), table.column("tokens").to_pylist(), strict=True)
        ):
            rows.append((shard, row, sid, np.asarray(tokens, dtype=np.int64)))
    return rows
