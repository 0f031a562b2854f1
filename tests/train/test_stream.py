import itertools

import numpy as np
import pytest
import torch

from lvm_data.train.config import Vocab
from lvm_data.train.shards import DataError, is_validation, open_corpus
from lvm_data.train.stream import PackedStream, Packer, StreamLoader, StreamSpec, iter_sentences

from .synth import random_corpus, split_keys

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
            spec = StreamSpec(context=16, batch_size=2, seed=5, val_fraction=fraction, rank=rank, world_size=world,
                              num_workers=workers)
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
    seen = [sid for sid, _codes, position in itertools.takewhile(
        lambda item: item[2].epoch == 0, iter_sentences(corpus, spec, 0))]
    every = ids["alpha"] + ids["beta"]
    hashed = {i for i, held in zip(every, is_validation([keys[i] for i in every], 0.01), strict=True) if held}
    assert sorted(seen) == sorted(set(every) - set(extra_ids) - hashed)
