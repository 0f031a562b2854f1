import math

import numpy as np
import pytest
import torch

from benchmarks.context_use import image_pairs, measure, previous_image
from lvm_data.shards import layout
from lvm_data.train import validation
from lvm_data.train.config import IGNORE_INDEX, Vocab
from lvm_data.train.shards import open_corpus

from .synth import repeating_clips, write_shard

V = Vocab(64)
TPI = 8


class Copier(torch.nn.Module):
    """Puts nearly all its mass on the code at the same place one image earlier, where there is one."""

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        b, t = idx.shape
        logits = torch.zeros(b, t, V.size)
        # target p is code p; the code one image earlier is code p - TPI, which is input p - TPI + 1
        logits[:, TPI:].scatter_(-1, idx[:, 1 : t - TPI + 1, None], 30.0)
        return logits


class Uniform(torch.nn.Module):
    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*idx.shape, V.size)


@pytest.fixture
def clips(tmp_path):
    """Source "clips": 3 images of 8 codes, each later image keeping 6 of the previous one's codes."""
    sentences = repeating_clips(np.random.default_rng(5), 60, tpi=TPI)
    write_shard(tmp_path / layout.sentences_file("clips", "00000"), "clips", sentences, codebook=64, tpi=TPI)
    corpus = open_corpus(str(tmp_path))
    [vset] = validation.build(corpus, V, 32, 0.2, 10**6)
    return vset, validation.scan_training(corpus, 0.2)


def test_image_pairs_keep_the_images_whose_previous_image_is_whole_in_the_row():
    i = IGNORE_INDEX
    targets = torch.tensor([[1, 2, 3, 4, 5, i, i, i], [6, 7, 8, 9, i, i, i, i]])
    assert image_pairs(targets, targets, 2).tolist() == [[3, 4], [8, 9]]
    assert image_pairs(previous_image(targets, 2), targets, 2).tolist() == [[1, 2], [6, 7]]


def test_rows_that_do_not_start_on_an_image_boundary_are_refused():
    with pytest.raises(ValueError, match="not a multiple of 8 codes per image"):
        image_pairs(torch.zeros(1, 12, dtype=torch.int64), torch.zeros(1, 12, dtype=torch.int64), 8)


def test_a_model_that_copies_by_place_puts_its_mass_on_the_repeated_codes(clips):
    vset, training = clips
    use = measure(Copier(), vset, training, TPI, batch_size=4)
    assert use.images == 2 * vset.sentences  # images 2 and 3 of each held-out clip
    assert 0.74 <= use.repeat_share <= 0.8  # 6 of 8 kept, and a redrawn code sometimes repeats by chance
    assert use.p_previous_on_repeats > 0.999 and use.loss_on_repeats < 0.01
    assert use.loss_on_new > 20  # certain of the previous code where it changed
    assert use.copy < use.bag < use.unigram  # where repeats are by place, the place is worth more than the bag


def test_a_model_that_ignores_its_context_scores_the_uniform_loss_everywhere(clips):
    vset, training = clips
    use = measure(Uniform(), vset, training, TPI)
    assert use.loss == pytest.approx(math.log(V.size), rel=1e-6)
    assert use.loss_on_repeats == pytest.approx(use.loss_on_new, rel=1e-6)
    assert use.p_previous_on_repeats == pytest.approx(1 / V.size) == pytest.approx(use.p_previous_on_new)
    own = training.log_probs("clips")
    current = image_pairs(vset.targets, vset.targets, TPI).numpy()
    assert use.unigram == pytest.approx(float(-own[current].mean()))


def test_a_source_without_two_images_in_a_row_has_no_figures(tmp_path):
    rng = np.random.default_rng(1)
    sentences = [rng.integers(0, 64, TPI) for _ in range(40)]
    write_shard(tmp_path / layout.sentences_file("single", "00000"), "single", sentences, codebook=64, tpi=TPI)
    corpus = open_corpus(str(tmp_path))
    [vset] = validation.build(corpus, V, 32, 0.2, 10**6)
    assert measure(Uniform(), vset, validation.scan_training(corpus, 0.2), TPI) is None
