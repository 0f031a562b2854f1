import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from lvm_data.shards import layout
from lvm_data.train import validation
from lvm_data.train.config import IGNORE_INDEX, Vocab, model_config
from lvm_data.train.model import LLaMA, init_weights
from lvm_data.train.shards import content_key, is_validation, open_corpus, small_source_holdouts

from .synth import random_corpus, repeating_clips, split_keys, write_shard

V = Vocab(64)


def reused_image_corpus(out, tpi=8, codebook=64):
    """Source "derived": sentences [shared image k, own image]; source "photos": each shared image alone.
    Returns (ids of derived, ids of photos)."""
    rng = np.random.default_rng(3)
    shared = [rng.integers(0, codebook, tpi) for _ in range(12)]
    derived = [np.concatenate([img, rng.integers(0, codebook, tpi)]) for img in shared]
    ids = write_shard(out / layout.sentences_file("derived", "00000"), "derived", derived, codebook=codebook, tpi=tpi)
    photo_ids = write_shard(
        out / layout.sentences_file("photos", "00000"), "photos", shared, codebook=codebook, tpi=tpi, first=100
    )
    return ids, photo_ids


def test_unigram_baseline_is_the_held_out_cross_entropy_under_training_frequencies(tmp_path):
    random_corpus(tmp_path, files=1, per_file=30, codebook=64, tpi=8)
    corpus = open_corpus(str(tmp_path))
    training = validation.scan_training(corpus, 0.2)
    counts = np.zeros(64)
    held: dict[str, list] = {}
    for path in sorted(tmp_path.rglob("*.parquet")):
        table = pq.read_table(path)
        for _sid, source, tokens in zip(
            *(table.column(c).to_pylist() for c in ("id", "source", "tokens")), strict=True
        ):
            if is_validation([content_key(np.asarray(tokens))], 0.2)[0]:
                held.setdefault(source, []).extend(tokens)
            else:
                counts += np.bincount(tokens, minlength=64)
    assert training.complete and training.tokens == counts.sum()
    p = (counts + 0.5) / (counts.sum() + 32)
    sets = validation.build(corpus, V, 32, 0.2, 10**6, training=training)
    for vset in sets:
        assert vset.unigram_loss == pytest.approx(-np.log(p[held[vset.source]]).mean())
        assert vset.unigram_loss > validation.unigram_entropy(np.array(held[vset.source]), 64)  # the plug-in is lower
    assert training.entropy() == pytest.approx(validation.unigram_entropy_of_counts(counts))


def test_a_capped_scan_is_the_same_sample_whatever_the_threads(tmp_path):
    random_corpus(tmp_path, files=3, per_file=20, codebook=64, tpi=8, row_group_size=2)
    corpus = open_corpus(str(tmp_path))
    whole = validation.scan_training(corpus, 0.1)
    capped = [validation.scan_training(corpus, 0.1, max_tokens=100, threads=t) for t in (1, 3, 8)]
    assert whole.complete and not any(c.complete for c in capped)
    assert 100 <= capped[0].tokens < whole.tokens
    assert all((c.counts == capped[0].counts).all() and c.images == capped[0].images for c in capped)


def test_held_out_images_that_occur_in_training_are_counted_and_scored_apart(tmp_path):
    derived_ids, photo_ids = reused_image_corpus(tmp_path)
    corpus = open_corpus(str(tmp_path))
    keys = split_keys(tmp_path)
    extra = tuple(keys[i] for i in derived_ids[:3])  # hold out three derived sentences; their shared images stay
    sets = {s.source: s for s in validation.build(corpus, V, 16, 0.0001, 10**6, extra)}
    derived = sets["derived"]
    assert derived.images == 6 and derived.seen_images == 3
    # targets of each sentence: [shared image: seen][own image: unseen], BOS/EOS ignored
    scored = derived.targets >= 0
    assert int((derived.unseen & scored).sum()) == 3 * 8
    assert derived.inputs.flatten()[1:9].tolist() == [int(c) for c in derived.targets.flatten()[:8]]
    assert not derived.unseen.flatten()[:8].any() and derived.unseen.flatten()[8:16].all()

    model = LLaMA(model_config("tiny", V, 16))
    init_weights(model, 1)
    score = validation.evaluate(model, [derived], batch_size=1)["derived"]
    with torch.no_grad():
        per_token = torch.nn.functional.cross_entropy(
            model(derived.inputs).flatten(0, 1), derived.targets.flatten(), ignore_index=IGNORE_INDEX, reduction="none"
        )
    unseen = derived.unseen.flatten() & scored.flatten()
    assert score.loss == pytest.approx(float(per_token.sum()) / derived.codes, rel=1e-5)
    assert score.unseen_loss == pytest.approx(float(per_token[unseen].mean()), rel=1e-5)
    assert score.loss != pytest.approx(score.unseen_loss)


def test_no_unseen_loss_when_every_held_out_image_was_trained_on(tmp_path):
    derived_ids, photo_ids = reused_image_corpus(tmp_path)
    sets = {
        s.source: s
        for s in validation.build(
            open_corpus(str(tmp_path)), V, 16, 0.0001, 10**6, (split_keys(tmp_path)[photo_ids[0]],)
        )
    }
    photos = sets["photos"]
    assert photos.images == photos.seen_images == 1  # the derived sentences still hold that image
    model = LLaMA(model_config("tiny", V, 16))
    init_weights(model, 1)
    assert validation.evaluate(model, [photos], batch_size=2)["photos"].unseen_loss is None


def test_unigram_entropy_in_nats():
    assert validation.unigram_entropy(np.array([0, 1, 2, 3] * 5), 64) == pytest.approx(math.log(4))
    assert validation.unigram_entropy(np.array([7] * 9), 64) == 0.0
    p = np.array([0.5, 0.25, 0.25])
    assert validation.unigram_entropy(np.array([1, 1, 2, 3]), 64) == pytest.approx(-(p * np.log(p)).sum())


def test_each_sentence_is_read_from_its_own_start_and_only_codes_are_scored():
    rows = validation.sentence_rows([np.array([1, 2, 3]), np.array([4])], V, context=4, tokens_per_image=1)
    ignore = IGNORE_INDEX
    assert rows.inputs.tolist() == [[V.bos, 1, 2, 3], [V.bos, 4, V.eos, V.pad]]
    assert rows.targets.tolist() == [[1, 2, 3, ignore], [4, ignore, ignore, ignore]]
    assert rows.images.tolist() == [[0, 1, 2, -1], [3, -1, -1, -1]]  # numbered across the sentences
    assert rows.places.tolist() == [[0, 1, 2, -1], [0, -1, -1, -1]]


def test_a_code_s_place_counts_the_earlier_images_of_its_sentence_wholly_in_its_row():
    codes = np.arange(12)  # 6 images of 2 codes
    rows = validation.sentence_rows([codes], V, context=8, tokens_per_image=2)
    assert rows.targets[0].tolist() == list(range(8)) and rows.places[0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    # the second row's inputs start at code 7: image 3 (codes 6, 7) is not wholly in view, image 4 is
    assert rows.inputs[1, 0] == 7 and rows.targets[1, :4].tolist() == [8, 9, 10, 11]
    assert rows.places[1].tolist() == [0, 0, 1, 1, -1, -1, -1, -1]
    assert len(rows.inputs) == 2  # a third row would score only EOS: left out
    longer = validation.sentence_rows([np.arange(12)], V, context=8, tokens_per_image=4)
    assert longer.places.tolist() == [[0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, -1, -1, -1, -1]]


class PreviousImageCopier(torch.nn.Module):
    """Puts almost all mass on the code one image back (the input tpi - 1 positions earlier), uniform where
    there is none: a model whose only skill is context."""

    def __init__(self, tpi: int):
        super().__init__()
        self.tpi = tpi
        self.scale = torch.nn.Parameter(torch.tensor(20.0))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(*inputs.shape, V.size)
        back = self.tpi - 1
        source = inputs[:, 1 : inputs.shape[1] - back]  # input t - back is the target t's code one image earlier
        logits[:, back + 1 :].scatter_(2, source.unsqueeze(-1), float(self.scale))
        return logits


def test_a_model_that_copies_the_previous_image_shows_a_context_gain_and_none_on_the_first(tmp_path):
    rng = np.random.default_rng(0)
    stills = [np.tile(rng.integers(0, 64, 8), 3) for _ in range(30)]  # one random image shown 3 times
    write_shard(tmp_path / layout.sentences_file("still", "00000"), "still", stills, codebook=64, tpi=8)
    [vset] = validation.build(open_corpus(str(tmp_path)), V, 32, 0.3, 10**6)
    score = validation.evaluate(PreviousImageCopier(8), [vset], batch_size=4)["still"]  # pyright: ignore
    assert len(score.by_place) == 3
    assert score.first_loss == pytest.approx(math.log(V.size), abs=1e-4)  # nothing to copy from
    assert score.by_place[1] < 1e-3 and score.by_place[2] < 1e-3
    assert score.later_loss is not None and score.later_loss < 1e-3
    assert score.context_gain == pytest.approx(score.by_place[0] - score.later_loss)
    assert score.loss == pytest.approx((score.by_place[0] + 2 * score.later_loss) / 3)


def test_no_context_figure_when_no_row_holds_two_images(tmp_path):
    random_corpus(tmp_path, files=1, per_file=20, codebook=64, tpi=8)
    sets = validation.build(open_corpus(str(tmp_path)), V, 8, 0.3, 10**6)  # one image per row
    model = LLaMA(model_config("tiny", V, 8))
    init_weights(model, 0)
    score = validation.evaluate(model, sets, batch_size=2)["alpha"]
    assert len(score.by_place) == 1 and score.later_loss is None and score.context_gain is None
    assert score.first_loss == pytest.approx(score.loss)


def test_one_set_per_source_from_held_out_sentences_only(tmp_path):
    ids = random_corpus(tmp_path, files=2, per_file=20, codebook=64, tpi=8)
    corpus = open_corpus(str(tmp_path))
    sets = validation.build(corpus, V, context=32, fraction=0.25, max_tokens=10**6)
    keys = split_keys(tmp_path)
    assert [s.source for s in sets] == ["alpha", "beta"]
    for vset in sets:
        held_out = int(is_validation([keys[i] for i in ids[vset.source]], 0.25).sum())
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
    scores = validation.evaluate(model, sets, batch_size=2)
    assert set(scores) == {"alpha", "beta"}
    assert all(s.loss == pytest.approx(math.log(V.size), abs=1e-5) for s in scores.values())
    assert all(s.unseen_loss == pytest.approx(s.loss) for s in scores.values())
    assert model.training


def test_every_source_with_two_sentences_gets_a_validation_loss(tmp_path):
    # 3 sentences per source at 5 %: the hash alone holds out nothing from most sources
    ids = random_corpus(tmp_path, sources=("a", "b", "c", "d"), files=1, per_file=3, codebook=64, tpi=8)
    random_corpus(tmp_path, sources=("single",), files=1, per_file=1, codebook=64, tpi=8, seed=1)
    corpus = open_corpus(str(tmp_path))
    keys = split_keys(tmp_path)
    hashed = {s for s, source_ids in ids.items() if is_validation([keys[i] for i in source_ids], 0.05).any()}
    assert hashed != {"a", "b", "c", "d"}  # else this test shows nothing
    extra = small_source_holdouts(corpus, 0.05)
    assert len(extra) == 4 - len(hashed)
    sets = validation.build(corpus, V, context=32, fraction=0.05, max_tokens=10**6, extra=extra)
    assert [s.source for s in sets] == ["a", "b", "c", "d"]  # a 1-sentence source keeps it for training
    assert all(s.sentences == 1 for s in sets)
    assert small_source_holdouts(corpus, 0.05) == extra  # the same sentences every time
    assert small_source_holdouts(corpus, 0.0) == ()


def test_the_same_source_unigram_uses_the_source_s_own_training_codes(tmp_path):
    rng = np.random.default_rng(3)
    low = [rng.integers(0, 16, size=16) for _ in range(40)]  # this source uses a quarter of the codebook
    high = [rng.integers(0, 64, size=16) for _ in range(40)]
    write_shard(tmp_path / layout.sentences_file("low", "00000"), "low", low, codebook=64, tpi=8)
    write_shard(tmp_path / layout.sentences_file("high", "00000"), "high", high, codebook=64, tpi=8)
    corpus = open_corpus(str(tmp_path))
    keys = split_keys(tmp_path)
    sets = {s.source: s for s in validation.build(corpus, V, 32, 0.2, 10**6)}
    training = validation.scan_training(corpus, 0.2)
    for source, sentences in (("low", low), ("high", high)):
        held = [s for s in sentences if is_validation([content_key(s)], 0.2)[0]]
        kept = [s for s in sentences if not is_validation([content_key(s)], 0.2)[0]]
        counts = np.bincount(np.concatenate(kept), minlength=64)
        own = np.log((counts + 0.5) / (counts.sum() + 0.5 * 64))
        codes = np.concatenate(held)
        assert sets[source].source_unigram_loss == pytest.approx(float(-own[codes].mean()))
        assert np.array_equal(training.by_source[source], counts)
    low_set = sets["low"]
    assert low_set.source_unigram_loss < low_set.unigram_loss - 0.3  # its palette alone is worth a lot
    between = (low_set.source_unigram_loss + low_set.unigram_loss) / 2
    assert low_set.beats(between) == "global unigram" and low_set.beats(0.0) == "both"
    assert low_set.beats(10.0) == "neither"
    assert len(keys) == 80


def test_pooled_weighs_every_held_out_code_once_under_its_own_source_s_baselines(tmp_path):
    rng = np.random.default_rng(5)
    low = [rng.integers(0, 16, size=16) for _ in range(40)]
    high = [rng.integers(0, 64, size=48) for _ in range(40)]  # three times the codes per sentence
    write_shard(tmp_path / layout.sentences_file("low", "00000"), "low", low, codebook=64, tpi=8)
    write_shard(tmp_path / layout.sentences_file("high", "00000"), "high", high, codebook=64, tpi=8)
    sets = validation.build(open_corpus(str(tmp_path)), V, 32, 0.2, 10**6)
    scores = {"low": validation.Score(1.0, 1.0), "high": validation.Score(3.0, 3.0)}
    total = validation.pooled(sets, scores)
    assert total is not None
    by = {v.source: v for v in sets}
    n_low, n_high = by["low"].codes, by["high"].codes
    assert total.sources == 2 and total.codes == n_low + n_high and n_high > n_low
    assert total.loss == pytest.approx((n_low + 3 * n_high) / (n_low + n_high))
    own = (by["low"].source_unigram_loss * n_low + by["high"].source_unigram_loss * n_high) / (n_low + n_high)
    assert total.source_unigram_loss == pytest.approx(own)
    assert total.source_unigram_loss < total.unigram_loss  # low's palette counts where its codes are scored
    assert total.beats() == "both"  # 2.58 nats against 3.89 and 4.10
    worse = validation.pooled(sets, {source: validation.Score(9.0, 9.0) for source in scores})
    assert worse is not None and worse.beats() == "neither"
    assert validation.pooled(sets[:1], scores) is None  # one source: its own line says it all


def test_the_split_follows_the_codes_not_the_ids(tmp_path):
    """Sentence ids hash the input paths: the same files read from elsewhere must be split the same way."""
    rng = np.random.default_rng(5)
    sentences = [rng.integers(0, 64, size=16) for _ in range(60)]
    for folder, first in (("here", 0), ("there", 1000)):  # other ids, the same codes
        write_shard(
            tmp_path / folder / layout.sentences_file("s", "00000"), "s", sentences, codebook=64, tpi=8, first=first
        )
    held = {}
    for folder in ("here", "there"):
        (vset,) = validation.build(open_corpus(str(tmp_path / folder)), V, 32, 0.2, 10**6)
        held[folder] = vset.targets.tolist()
    assert held["here"] == held["there"] and held["here"]


def test_the_copy_baseline_repeats_the_previous_image_at_its_source_s_training_share(tmp_path):
    clips = repeating_clips(np.random.default_rng(5), 60)  # 3 images of 8 codes; each keeps 6 of the previous one's
    write_shard(tmp_path / layout.sentences_file("clips", "00000"), "clips", clips, codebook=64, tpi=8)
    corpus = open_corpus(str(tmp_path))
    [vset] = validation.build(corpus, V, 32, 0.2, 10**6)
    training = validation.scan_training(corpus, 0.2)
    kept = [s for s in clips if not is_validation([content_key(s)], 0.2)[0]]
    held = [s for s in clips if is_validation([content_key(s)], 0.2)[0]]
    equal = sum(int((s.reshape(3, 8)[1:] == s.reshape(3, 8)[:-1]).sum()) for s in kept)
    assert training.repeats["clips"] == (equal, 16 * len(kept))
    share = training.repeat_share("clips")
    assert 0.75 <= share < 0.8  # 6 of 8 kept, and a redrawn code sometimes repeats by chance
    own = training.log_probs("clips")
    by_hand = []
    for s in held:
        images = s.reshape(3, 8)
        by_hand += list(-own[images[0]])  # the first image: the unigram alone
        for prev, cur in zip(images[:-1], images[1:], strict=True):
            by_hand += [
                -math.log((1 - share) * math.exp(own[c]) + share * (c == p)) for c, p in zip(cur, prev, strict=True)
            ]
    assert vset.copy_loss == pytest.approx(float(np.mean(by_hand)))
    assert vset.copy_loss < vset.source_unigram_loss - 1.5  # most later codes are the previous image's


def test_the_copy_baseline_stays_finite_when_every_training_code_repeats(tmp_path):
    rng = np.random.default_rng(7)

    def held_out(codes):
        return bool(is_validation([content_key(codes)], 0.3)[0])

    stills = [s for s in (np.tile(rng.integers(0, 64, 8), 3) for _ in range(30)) if not held_out(s)]
    moving = next(s for s in (rng.integers(0, 64, 24) for _ in range(100)) if held_out(s))  # a held-out clip
    write_shard(tmp_path / layout.sentences_file("still", "00000"), "still", [*stills, moving], codebook=64, tpi=8)
    corpus = open_corpus(str(tmp_path))
    [vset] = validation.build(corpus, V, 32, 0.3, 10**6)
    share = validation.scan_training(corpus, 0.3).repeat_share("still")
    assert 0.99 < share < 1  # every training code repeats; the held-out clip's do not
    assert math.isfinite(vset.copy_loss) and vset.copy_loss > vset.source_unigram_loss


def test_no_copy_share_where_no_sentence_has_two_images(tmp_path):
    rng = np.random.default_rng(6)
    write_shard(
        tmp_path / layout.sentences_file("single", "00000"),
        "single",
        [rng.integers(0, 64, 8) for _ in range(30)],
        codebook=64,
        tpi=8,
    )
    corpus = open_corpus(str(tmp_path))
    [vset] = validation.build(corpus, V, 32, 0.3, 10**6)
    assert validation.scan_training(corpus, 0.3).repeat_share("single") == 0.0
    assert vset.copy_loss == pytest.approx(vset.source_unigram_loss)  # nothing to copy: the unigram itself
