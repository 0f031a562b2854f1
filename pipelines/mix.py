"""`lvm-data mix MIX.yaml`: job outputs -> a weighted, globally shuffled mixture in training shards.

Two Beam pipelines over the inputs' sentence files (distributed by file; nothing collects rows on one machine):

1. census: each selected sentence's part and split (and, with `dedup`, whether an identical sentence of an
   earlier part or id keeps it: a shuffle by the codes' digest); out come per part and hash group the training
   rows and tokens, validation counts and removals. Small: the driver reads them and plans the mix
   (lvm_data.mix.plan: epochs, quotas, shard counts), with errors that name the part.
2. write: the same selection, split and dedup, then per (part, hash group) a GroupByKey (1/4096 of a part)
   places each row's copies at dense positions of its part's output; a GroupByKey per shard (one shard's rows,
   ~shard_bytes) interleaves the parts and commits the shard (file, then marker). Committed shards are skipped,
   so a rerun after a kill writes only what is missing, with the same bytes.

The driver then writes the manifest (shares asked and achieved, per part and per shard; inputs' fingerprints;
every input sentence's fate) and the dataset card.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import tempfile
from collections import Counter, defaultdict

import apache_beam as beam
from apache_beam.io import WriteToText
from apache_beam.pvalue import TaggedOutput

from lvm_data import storage
from lvm_data.determinism import digest
from lvm_data.job.runs import remove_stale_temporaries
from lvm_data.mix.config import MixConfig
from lvm_data.mix.inputs import InputOutput, describe_inputs, read_rows
from lvm_data.mix.plan import (
    MixPlan,
    PartStats,
    group_bits,
    group_of,
    hash64,
    interleave,
    place_group,
    plan_mix,
    row_hash,
)
from lvm_data.mix.shards import (
    CARD,
    MANIFEST,
    MIX_FILE,
    MixRow,
    RowBatch,
    commit_shard,
    committed,
    dataset_card,
    read_markers,
    shares,
)
from pipelines.tokenize import pipeline_options

DUPLICATE = "duplicate_sentence"


def mix_hash(config: MixConfig, inputs: list[InputOutput]) -> str:
    """What the shards' bytes depend on: the mix file (not its output) and every input's fingerprint."""
    payload = {**config.to_dict(), "output": None, "inputs": [i.fingerprint() for i in inputs]}
    return digest([json.dumps(payload, sort_keys=True)])


# --- shared by both passes --------------------------------------------------------------------------------------


class ReadRows(beam.DoFn):
    """A sentence file -> its selected (split, row)s (`batched`: per file, train rows in lists per (part, group)
    and validation rows in one list: a few elements per file, not one per sentence)."""

    def __init__(self, config: MixConfig, bits: dict[str, int], tokens: bool, batched: bool):
        self.config, self.bits, self.tokens, self.batched = config, bits, tokens, batched

    def process(self, entry):
        root, uri = entry
        rows = read_rows(self.config, root, uri, tokens=self.tokens)
        if not self.batched:
            yield from rows
            return
        groups: dict[tuple[str, int], list[MixRow]] = defaultdict(list)
        validation = []
        for split, row in rows:
            if split == "validation":
                validation.append(row)
            else:
                groups[(row.part, _group(self.config.seed, self.bits, row))].append(row)
        yield from (("train", key, RowBatch(batch)) for key, batch in sorted(groups.items()))
        if validation:
            yield "validation", None, RowBatch(validation)


def _group(seed: int, bits: dict[str, int], row: MixRow) -> int:
    return group_of(row_hash(seed, row.part, row.sentence_id), bits[row.part])


def _digest(row: MixRow) -> bytes:
    return hashlib.blake2b(row.tokens.tobytes(), digest_size=16).digest()


def _keep_first(entry, order: dict[str, int], seed: int, bits: dict[str, int]):
    """Identical sentences (same codes): the one of the earliest part, then output, then id, is kept."""
    _digest_key, rows = entry
    rows = sorted(rows, key=lambda sr: (order[sr[1].part], sr[1].output, sr[1].sentence_id))
    split, row = rows[0]
    yield (split, (row.part, _group(seed, bits, row)) if split == "train" else None, RowBatch([row]))
    for _split, other in rows[1:]:
        yield TaggedOutput("removed", (other.part, DUPLICATE))


def selected_batches(p, config: MixConfig, bits: dict[str, int], files: list[tuple[str, str]], tokens: bool):
    """(split, key, rows) batches (key: (part, group) for train, None for validation), and the removed
    (part, reason) pcollection (empty without dedup)."""
    read = p | "Files" >> beam.Create(files) | "SpreadFiles" >> beam.Reshuffle()
    if not config.dedup:
        batches = read | "Read" >> beam.ParDo(ReadRows(config, bits, tokens, batched=True))
        return batches, p | "NoRemovals" >> beam.Create([])
    order = {part.name: i for i, part in enumerate(config.parts)}
    kept = (
        read
        | "Read" >> beam.ParDo(ReadRows(config, bits, True, batched=False))
        | "ByCodes" >> beam.Map(lambda sr: (_digest(sr[1]), sr))
        | "SameCodes" >> beam.GroupByKey()
        | "KeepFirst" >> beam.FlatMap(_keep_first, order, config.seed, bits).with_outputs("removed", main="kept")
    )
    return kept.kept, kept.removed


# --- pass 1: census ----------------------------------------------------------------------------------------------


def _census_counts(batch, tpi: int):
    split, key, rows = batch
    counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows.rows:
        target = counts[("validation", row.part, -1) if split == "validation" else ("train", *key)]
        target[0] += 1
        target[1] += len(row.tokens) or row.n_images * tpi
    yield from ((k, tuple(v)) for k, v in counts.items())


def _sum_pairs(pairs):
    rows = tokens = 0
    for r, t in pairs:
        rows, tokens = rows + r, tokens + t
    return rows, tokens


def run_census(config: MixConfig, bits: dict[str, int], files, tpi: int, beam_args: list[str], work: str) -> dict:
    runner, options, _ = pipeline_options(beam_args)
    with beam.Pipeline(runner=runner, options=options) as p:
        batches, removed = selected_batches(p, config, bits, files, tokens=False)
        counts = (
            batches
            | "Count" >> beam.FlatMap(_census_counts, tpi)
            | "CountGroups" >> beam.CombinePerKey(_sum_pairs)
            | "CountLine" >> beam.Map(lambda kv: json.dumps({"key": list(kv[0]), "rows": kv[1][0], "tokens": kv[1][1]}))
        )
        gone = (
            removed
            | "RemovedKey" >> beam.Map(lambda pr: (pr, 1))
            | "CountRemoved" >> beam.CombinePerKey(sum)
            | "RemovedLine" >> beam.Map(lambda kv: json.dumps({"removed": list(kv[0]), "rows": kv[1]}))
        )
        _ = (counts, gone) | beam.Flatten() | "WriteCensus" >> WriteToText(f"{work}/census", file_name_suffix=".jsonl")
    return read_census(work, config, bits)


def read_census(work: str, config: MixConfig, bits: dict[str, int]) -> dict:
    stats = {p.name: PartStats.empty(bits[p.name]) for p in config.parts}
    validation: Counter = Counter()
    validation_tokens: Counter = Counter()
    removed: dict[str, Counter] = defaultdict(Counter)
    for uri in storage.list_files(work):
        if "census" not in uri.rsplit("/", 1)[-1]:
            continue
        for line in storage.read_bytes(uri).decode().splitlines():
            record = json.loads(line)
            if "removed" in record:
                part, reason = record["removed"]
                removed[part][reason] += record["rows"]
                continue
            split, part, group = record["key"]
            if split == "validation":
                validation[part] += record["rows"]
                validation_tokens[part] += record["tokens"]
            else:
                stats[part].rows[group] += record["rows"]
                stats[part].tokens[group] += record["tokens"]
    return {
        "stats": stats,
        "validation": dict(validation),
        "validation_tokens": dict(validation_tokens),
        "removed": {p: dict(c) for p, c in removed.items()},
    }


# --- pass 2: write -----------------------------------------------------------------------------------------------


class PlaceGroup(beam.DoFn):
    """((part, group), [row batches]) -> (shard, Placed rows) for every copy, a batch per shard."""

    def __init__(self, config: MixConfig, plan: MixPlan):
        self.seed, self.plan = config.seed, plan

    def process(self, entry):
        (part_name, group), batches = entry
        part = self.plan.part(part_name)
        rows = sorted(
            (r for batch in batches for r in batch.rows),
            key=lambda r: (row_hash(self.seed, r.part, r.sentence_id), r.output, r.sentence_id),
        )
        by_shard: dict[int, tuple[list[int], list[MixRow]]] = defaultdict(lambda: ([], []))
        for row, copies in zip(rows, place_group(part, group, [len(r.tokens) for r in rows]), strict=True):
            for placed in copies:
                positions, placed_rows = by_shard[placed.shard(self.plan.train_shards)]
                positions.append(placed.position)
                placed_rows.append(row if placed.copy == 0 else dataclasses.replace(row, copy=placed.copy))
        for shard, (positions, placed_rows) in by_shard.items():
            yield shard, (part.index, positions, RowBatch(placed_rows))


class WriteShard(beam.DoFn):
    def __init__(self, out: str, split: str, meta: dict, mix_hash: str, done: set):
        self.out, self.split, self.meta, self.hash, self.done = out, split, meta, mix_hash, done

    def process(self, entry):
        shard, batches = entry
        if (self.split, shard) in self.done:
            return
        if self.split == "train":
            ordered = interleave(
                (part, position, len(row.tokens), row)
                for part, positions, batch in batches
                for position, row in zip(positions, batch.rows, strict=True)
            )
        else:
            rows = [r for batch in batches for r in batch.rows]
            ordered = [r for _, r in sorted((((r.sentence_id, r.output), r) for r in rows), key=lambda kr: kr[0])]
        commit_shard(self.out, self.split, shard, ordered, self.meta, self.hash)
        yield shard


def _validation_shards(batch, shards: int):
    _split, _key, rows = batch
    by_shard: dict[int, list[MixRow]] = defaultdict(list)
    for row in rows.rows:
        by_shard[hash64(row.sentence_id.encode()) % shards].append(row)
    yield from ((shard, RowBatch(rows)) for shard, rows in by_shard.items())


def run_write(
    config: MixConfig,
    bits: dict[str, int],
    files,
    plan: MixPlan,
    meta: dict,
    digest: str,
    done: set,
    beam_args: list[str],
) -> None:
    runner, options, _ = pipeline_options(beam_args)
    with beam.Pipeline(runner=runner, options=options) as p:
        batches, _removed = selected_batches(p, config, bits, files, tokens=True)
        _ = (
            batches
            | "Train" >> beam.FlatMap(lambda b: [(b[1], b[2])] if b[0] == "train" else [])
            | "Groups" >> beam.GroupByKey()
            | "Place" >> beam.ParDo(PlaceGroup(config, plan))
            | "Shards" >> beam.GroupByKey()
            | "WriteTrain" >> beam.ParDo(WriteShard(config.output, "train", meta, digest, done))
        )
        if plan.validation_shards:
            _ = (
                batches
                | "Validation" >> beam.FlatMap(lambda b: [b] if b[0] == "validation" else [])
                | "ByValShard" >> beam.FlatMap(_validation_shards, plan.validation_shards)
                | "ValShards" >> beam.GroupByKey()
                | "WriteValidation" >> beam.ParDo(WriteShard(config.output, "validation", meta, digest, done))
            )


# --- the command ---------------------------------------------------------------------------------------------


def run_mix(config: MixConfig, mix_text: str | None, beam_args: list[str], watch=None) -> dict:
    """Plan, write and finish the mix; returns its manifest. `watch(plan)`, when given, returns a context manager
    active while the shards are written (progress)."""
    inputs = describe_inputs(config)
    digest = mix_hash(config, inputs)
    done = committed(config.output, digest)
    remove_stale_temporaries(config.output)
    if mix_text is not None:
        storage.write_bytes(storage.join(config.output, MIX_FILE), mix_text.encode())
    files = [(i.root, uri) for i in inputs for uri, _size, _rows in i.files]
    bits = part_group_bits(config, inputs)
    first = inputs[0]
    with tempfile.TemporaryDirectory(prefix="lvm-mix-census-") as work:
        census = run_census(config, bits, files, first.tokens_per_image, beam_args, work)
    plan = plan_mix(config, census["stats"], sum(census["validation_tokens"].values()))
    meta = {
        "tokenizer_fingerprint": first.tokenizer_fingerprint,
        "codebook_size": first.codebook_size,
        "tokens_per_image": first.tokens_per_image,
        "mix": config.name,
    }
    with watch(plan) if watch else contextlib.nullcontext():
        run_write(config, bits, files, plan, meta, digest, done, beam_args)
    manifest = mix_manifest(config, inputs, digest, plan, census, read_markers(config.output))
    storage.write_bytes(storage.join(config.output, MANIFEST), json.dumps(manifest, indent=1, sort_keys=True).encode())
    splits = [s for s in ("train", "validation") if any(m["split"] == s for m in manifest["shards"])]
    storage.write_bytes(storage.join(config.output, CARD), dataset_card(config.name, splits).encode())
    return manifest


def part_group_bits(config: MixConfig, inputs: list[InputOutput]) -> dict[str, int]:
    """Hash-group bits per part, from its inputs' row counts (footers): an upper bound of what it selects."""
    rows = {i.root: sum(f[2] for f in i.files) for i in inputs}
    return {p.name: group_bits(sum(rows[root] for root in p.inputs)) for p in config.parts}


def mix_manifest(
    config: MixConfig, inputs: list[InputOutput], digest: str, plan: MixPlan, census: dict, markers: list[dict]
) -> dict:
    train = [m for m in markers if m["split"] == "train"]
    achieved: dict[str, dict[str, int]] = defaultdict(lambda: {"sentences": 0, "tokens": 0, "repeats": 0})
    for marker in train:
        for part, counts in marker["parts"].items():
            for key, value in counts.items():
                achieved[part][key] += value
    got = shares(achieved)
    parts = {}
    for p in plan.parts:
        stats = census["stats"][p.name]
        parts[p.name] = {
            "asked_share": round(p.asked_share, 6),
            "achieved_share": round(got.get(p.name, 0.0), 6),
            "epochs": round(p.epochs, 6),
            "input_sentences": int(stats.rows.sum())
            + census["validation"].get(p.name, 0)
            + sum(census["removed"].get(p.name, {}).values()),
            "train_sentences": p.rows,
            "train_tokens": p.tokens,
            "validation_sentences": census["validation"].get(p.name, 0),
            "removed": census["removed"].get(p.name, {}),
            "mix_sentences": achieved[p.name]["sentences"],
            "mix_tokens": achieved[p.name]["tokens"],
            "repeated_sentences": achieved[p.name]["repeats"],
        }
    per_shard = [
        {
            "split": m["split"],
            "shard": m["shard"],
            "tokens": m["tokens"],
            "sentences": m["sentences"],
            "bytes": m["bytes"],
            "shares": shares(m["parts"]) if m["split"] == "train" else {},
        }
        for m in markers
    ]
    worst = max(
        (
            abs(s["shares"].get(p.name, 0.0) - p.asked_share)
            for s in per_shard
            if s["split"] == "train"
            for p in plan.parts
        ),
        default=0.0,
    )
    tokens = sum(m["tokens"] for m in markers)
    return {
        "schema_version": "mix-1.0",
        "name": config.name,
        "mix_hash": digest,
        "seed": config.seed,
        "config": config.to_dict(),
        "inputs": [i.fingerprint() for i in inputs],
        "asked_tokens": round(plan.total_tokens),
        "train_shards_planned": plan.train_shards,
        "parts": parts,
        "shards": per_shard,
        "worst_shard_share_error": round(worst, 6),
        "worst_global_share_error": round(max(abs(v["achieved_share"] - v["asked_share"]) for v in parts.values()), 6),
        "bytes_per_token": round(sum(m["bytes"] for m in markers) / tokens, 4) if tokens else None,
    }
