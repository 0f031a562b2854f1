import itertools
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from lvm_data.train.config import Vocab
from lvm_data.train.shards import DataError, is_validation, open_corpus
from lvm_data.train.stream import (
    MixPosition,
    PackedStream,
    Packer,
    StreamLoader,
    StreamSpec,
    iter_mix_sentences,
    iter_sentences,
    mix_owner,
)

from .synth import mix_rows, random_corpus, split_keys

V = Vocab(64)
B, E = V.bos, V.eos


def test_packer_puts_bos_and_eos_around_each_sentence_and_overlaps_rows_by_one():
    packer = Packer(V, context=4)
    packer.add(np.array([1, 2]))
    assert list(packer.rows()) == []
    packer.add(np.array([3]))
    packer.add(np.array([4, 5, 6]))
    rows = [r.tolist() for r in packer.rows()]
    assert rows == [[B, 1, 2, E, B], [B, 3, E, B, 4]]
    assert packer.buffer.tolist() == [4, 5, 6, E]


@pytest.mark.parametrize(("world", "workers"), [(1, 1), (2, 1), (1, 3), (2, 2)])
def test_ranks_and_workers_read_every_row_exactly_once_per_epoch(tmp_path, world, workers):
    ids = random_corpus(tmp_path, files=2, per_file=7, row_group_size=3)
    every = sorted(ids["alpha"] + ids["beta"])
    corpus = open_corpus(str(tmp_path))
    for fraction in (0.0, 0.3):
        seen = []
        for rank, worker in itertools.product(range(world), range(workers)):
            spec = StreamSpec(
                context=16,
                batch_size=2,
                seed=5,
                val_fraction=fraction,
                rank=rank,
                world_size=world,
                num_workers=workers,
            )
            consumer = rank * spec.workers + worker
            for sid, _codes, pos in iter_sentences(corpus, spec, consumer):
                if pos.epoch > 0:
                    break
                seen.append(sid)
        keys = split_keys(tmp_path)
        held_out = [i for i, v in zip(every, is_validation([keys[i] for i in every], fraction), strict=True) if v]
        assert sorted(seen + held_out) == every
        assert len(set(seen)) == len(seen)


def test_epochs_reshuffle_the_stream(tmp_path):
    random_corpus(tmp_path, files=2, per_file=7, row_group_size=3)
    corpus = open_corpus(str(tmp_path))
    spec = StreamSpec(context=16, batch_size=2)
    stream = iter_sentences(corpus, spec, 0)
    first = [next(stream)[0] for _ in range(28)]
    second = [next(stream)[0] for _ in range(28)]
    assert sorted(first) == sorted(second) and first != second


def test_too_few_row_groups_for_the_readers_is_an_error(tmp_path):
    random_corpus(tmp_path, sources=("alpha",), files=1, per_file=4, row_group_size=4)
    spec = StreamSpec(context=16, batch_size=2, num_workers=2)
    with pytest.raises(DataError, match="1 row groups for 2 readers"):
        next(iter_sentences(open_corpus(str(tmp_path)), spec, 0))


def take(loader, n):
    it = iter(loader)
    return [next(it) for _ in range(n)]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_loader_rebuilt_from_its_state_continues_the_same_batches(tmp_path, workers):
    random_corpus(tmp_path, files=2, per_file=9, row_group_size=3)
    corpus = open_corpus(str(tmp_path))
    spec = StreamSpec(context=20, batch_size=3, seed=1, val_fraction=0.1, num_workers=workers)
    # what an uninterrupted loader yields: its workers' streams, taken in turn (computed in-process)
    streams = [iter(PackedStream(corpus, V, spec, rotation=w)) for w in range(spec.workers)]
    whole = [next(streams[i % spec.workers])["tokens"] for i in range(9)]
    assert all(b.shape == (3, 21) and b.dtype == torch.int64 for b in whole)
    first = StreamLoader(corpus, V, spec)
    assert all(torch.equal(a, b) for a, b in zip(take(first, 5), whole, strict=False))
    resumed = StreamLoader(corpus, V, spec, state=first.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(take(resumed, 4), whole[5:], strict=True))


def test_a_position_from_other_shards_or_settings_is_refused(tmp_path):
    random_corpus(tmp_path, files=2, per_file=9, row_group_size=3)
    corpus = open_corpus(str(tmp_path))
    spec = StreamSpec(context=20, batch_size=3)
    loader = StreamLoader(corpus, V, spec)
    take(loader, 2)
    state = loader.state_dict()
    with pytest.raises(DataError, match="same batch size"):
        StreamLoader(corpus, V, StreamSpec(context=20, batch_size=4), state=state)
    with pytest.raises(DataError, match="differ from those the checkpoint"):
        StreamLoader(corpus, V, spec, state={**state, "corpus": "0" * 32})


def test_extra_held_out_sentences_never_enter_the_stream(tmp_path):
    ids = random_corpus(tmp_path, files=1, per_file=12, codebook=64, tpi=8)
    keys = split_keys(tmp_path)
    corpus = open_corpus(str(tmp_path))
    extra_ids = (ids["alpha"][3], ids["beta"][0])
    spec = StreamSpec(context=16, batch_size=2, val_fraction=0.01, val_extra=tuple(keys[i] for i in extra_ids))
    seen = [
        sid
        for sid, _codes, position in itertools.takewhile(
            lambda item: item[2].epoch == 0, iter_sentences(corpus, spec, 0)
        )
    ]
    every = ids["alpha"] + ids["beta"]
    hashed = {i for i, held in zip(every, is_validation([keys[i] for i in every], 0.01), strict=True) if held}
    assert sorted(seen) == sorted(set(every) - set(extra_ids) - hashed)


# --- a mix: read in its order ----------------------------------------------------------------------------------


def rewrite_row_groups(mix, out, row_group_size):
    """A copy of the mix whose shards hold row groups of `row_group_size` rows (same rows, same metadata)."""
    shutil.copytree(mix, out)
    for path in sorted((out / "train").glob("*.parquet")):
        pq.write_table(pq.read_table(path), path, row_group_size=row_group_size)
    return out


def expected_rows(mix, context, passes=3):
    """Packed rows of the mix's train rows in its order, over `passes` passes (what one reader alone yields)."""
    packer, rows = Packer(V, context), []
    for _ in range(passes):
        for _shard, _row, _sid, codes in mix_rows(mix):
            packer.add(codes)
            rows.extend(r.tolist() for r in packer.rows())
    return rows


def test_a_mix_is_read_in_its_order_and_resumes_at_any_row(small_mix, tmp_path):
    mix = rewrite_row_groups(small_mix, tmp_path / "mix", row_group_size=7)
    corpus = open_corpus(str(mix))
    assert corpus.mix and len(corpus.groups) > len(corpus.files) > 1
    rows = mix_rows(mix)
    stream = iter_mix_sentences(corpus)
    order = [next(stream) for _ in range(len(rows) + 3)]
    assert [(p.shard, p.row - 1, sid) for sid, _codes, p in order[: len(rows)]] == [(s, r, i) for s, r, i, _ in rows]
    assert all(np.array_equal(codes, row[3]) for (_sid, codes, _p), row in zip(order, rows, strict=False))
    assert [p for _sid, _codes, p in order[len(rows) :]] == [
        MixPosition(1, 0, 1),
        MixPosition(1, 0, 2),
        MixPosition(1, 0, 3),
    ]  # the next pass, same order
    for k in range(len(rows) + 1):  # from the position after any row: exactly the rows after it
        start = order[k - 1][2] if k else MixPosition()
        tail = [sid for sid, _codes, _p in itertools.islice(iter_mix_sentences(corpus, start), len(rows) - k)]
        assert tail == [sid for _s, _r, sid, _c in rows[k:]]


@pytest.mark.parametrize(("world", "workers"), [(1, 1), (2, 1), (1, 3), (2, 2)])
def test_mix_batches_go_to_ranks_and_workers_in_turn(small_mix, world, workers):
    corpus = open_corpus(str(small_mix))
    rows = expected_rows(small_mix, context=12)
    batches = {}  # global batch -> (its rows, the state it carries)
    for rank, worker in itertools.product(range(world), range(workers)):
        spec = StreamSpec(context=12, batch_size=2, rank=rank, world_size=world, num_workers=workers)
        stream = iter(PackedStream(corpus, V, spec, rotation=worker))
        consumer = rank * spec.workers + worker
        mine = [n for n in range(40) if mix_owner(n, spec) == consumer]
        for n in mine[: 40 // (world * workers)]:
            item = next(stream)
            assert item["consumer"] == consumer
            batches[n] = (item["tokens"].tolist(), item["state"])
    assert [row for n in sorted(batches) for row in batches[n][0]] == rows[: 2 * len(batches)]
    for n in batches:  # the state at the end of each round of ranks: the same on every rank of that round
        assert batches[n][1] == batches[n - n % world + world - 1][1]


def test_a_mix_position_resumes_with_other_ranks_workers_and_batch_size(small_mix):
    corpus = open_corpus(str(small_mix))
    rows = expected_rows(small_mix, context=12, passes=3)
    ranks = [StreamLoader(corpus, V, StreamSpec(context=12, batch_size=2, rank=r, world_size=2)) for r in range(2)]
    taken = [take(loader, 5) for loader in ranks]  # 5 steps of 2 ranks: global batches 0..9
    assert ranks[0].state_dict()["position"] == ranks[1].state_dict()["position"]
    assert [r for step in range(5) for rank in range(2) for r in taken[rank][step].tolist()] == rows[:20]
    state = ranks[1].state_dict()
    for spec in (StreamSpec(context=12, batch_size=3), StreamSpec(context=12, batch_size=2, world_size=3, rank=2)):
        resumed = StreamLoader(corpus, V, spec, state=state)
        got = [r for batch in take(resumed, 4) for r in batch.tolist()]
        if spec.world_size == 1:
            assert got == rows[20:32]  # the very next rows, 3 to a batch
        else:  # rank 2 of 3 takes global batches 2, 5, 8, 11 after the position
            assert got == [r for n in (2, 5, 8, 11) for r in rows[20 + 2 * n : 22 + 2 * n]]
    with pytest.raises(DataError, match="same context"):
        StreamLoader(corpus, V, StreamSpec(context=16, batch_size=2), state=state)


def test_a_mix_through_dataloader_workers_gives_the_in_process_batches(small_mix):
    corpus = open_corpus(str(small_mix))
    spec = StreamSpec(context=12, batch_size=2, num_workers=2)
    first = StreamLoader(corpus, V, spec)
    got = take(first, 5)
    assert [r for b in got for r in b.tolist()] == expected_rows(small_mix, context=12)[:10]
    resumed = StreamLoader(corpus, V, StreamSpec(context=12, batch_size=2), state=first.state_dict())
    assert [r for b in take(resumed, 2) for r in b.tolist()] == expected_rows(small_mix, context=12)[10:14]
