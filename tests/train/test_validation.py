import math

import numpy as np
import pytest
import torch

from lvm_data.train import validation
from lvm_data.train.config import IGNORE_INDEX, Vocab, model_config
from lvm_data.train.model import LLaMA, init_weights
from lvm_data.train.shards import is_validation, open_corpus, small_source_holdouts

from .synth import random_corpus

V = Vocab(64)


def test_unigram_entropy_in_nats():
    assert validation.unigram_entropy(np.array([0, 1, 2, 3] * 5), 64) == pytest.approx(math.log(4))
    assert validation.unigram_entropy(np.array([7] * 9), 64) == 0.0
    p = np.array([0.5, 0.25, 0.25])
    assert validation.unigram_entropy(np.array([1, 1, 2, 3]), 64) == pytest.approx(-(p * np.log(p)).sum())


def test_rows_are_packed_like_training_and_only_codes_are_scored():
    inputs, targets = validation.pack_rows([np.array([1, 2, 3]), np.array([4])], V, context=4)
    assert inputs.tolist() == [[V.bos, 1, 2, 3], [V.eos, V.bos, 4, V.eos]]
    ignore = IGNORE_INDEX
    assert targets.tolist() == [[1, 2, 3, ignore], [ignore, 4, ignore, ignore]]


def test_one_set_per_source_from_held_out_sentences_only(tmp_path):
    ids = random_corpus(tmp_path, files=2, per_file=20, codebook=64, tpi=8)
    corpus = open_corpus(str(tmp_path))
    sets = validation.build(corpus, V, context=32, fraction=0.25, max_tokens=10**6)
    assert [s.source for s in sets] == ["alpha", "beta"]
    for vset in sets:
        held_out = int(is_validation(ids[vset.source], 0.25).sum())
        assert vset.sentences == held_out > 0
        assert vset.codes == int((vset.targets >= 0).sum()) and vset.inputs.shape[1] == 32
    capped = validation.build(corpus, V, context=32, fraction=0.25, max_tokens=8)
    assert [s.sentences for s in capped] == [1, 1]


def test_a_model_that_ignores_its_input_scores_log_vocabulary(tmp_path):
    random_corpus(tmp_path, files=1, per_file=20, codebook=64, tpi=8)
    sets = validation.build(open_corpus(str(tmp_path)), V, 32, 0.3, 10**6)
    model = LLaMA(model_config("tiny", V, 32))
    init_weights(model, 0)
    with torch.no_grad():
        model.lm_head.weight.zero_()  # uniform over the vocabulary
    model.train()
    losses = validation.evaluate(model, sets, batch_size=2)
    assert set(losses) == {"alpha", "beta"}
    assert all(loss == pytest.approx(math.log(V.size), abs=1e-5) for loss in losses.values())
    assert model.training


def test_every_source_with_two_sentences_gets_a_validation_loss(tmp_path):
    # 3 sentences per source at 5 %: the hash alone holds out nothing from most sources
    ids = random_corpus(tmp_path, sources=("a", "b", "c", "d"), files=1, per_file=3, codebook=64, tpi=8)
    random_corpus(tmp_path, sources=("single",), files=1, per_file=1, codebook=64, tpi=8, seed=1)
    corpus = open_corpus(str(tmp_path))
    hashed = {s for s, source_ids in ids.items() if is_validation(source_ids, 0.05).any()}
    assert hashed != {"a", "b", "c", "d"}  # else this test shows nothing
    extra = small_source_holdouts(corpus, 0.05)
    assert len(extra) == 4 - len(hashed)
    sets = validation.build(corpus, V, context=32, fraction=0.05, max_tokens=10**6, extra=extra)
    assert [s.source for s in sets] == ["a", "b", "c", "d"]  # a 1-sentence source keeps it for training
    assert all(s.sentences == 1 for s in sets)
    assert small_source_holdouts(corpus, 0.05) == extra  # the same ids every time
    assert small_source_holdouts(corpus, 0.0) == ()
