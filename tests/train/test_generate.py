import json

import numpy as np
import pytest
import torch
from PIL import Image

from lvm_data import tokenizer as vq
from lvm_data.train.config import TrainConfig, Vocab, model_config
from lvm_data.train.generate import GenerateConfig, continue_codes, generate
from lvm_data.train.loop import train
from lvm_data.train.model import LLaMA, init_weights
from lvm_data.train.shards import DataError

from .synth import random_corpus, tiny_tokenizer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A job folder whose shards were made by a tiny random tokenizer, and a short training run on it."""
    root = tmp_path_factory.mktemp("gen")
    tok_dir = tiny_tokenizer(root / "tokenizer")
    tok = vq.load(str(tok_dir), device="cpu")
    job = root / "job"
    random_corpus(
        job,
        files=1,
        per_file=12,
        codebook=tok.codebook_size,
        tpi=tok.tokens_per_image,
        fingerprint=tok.fingerprint,
        row_group_size=6,
    )
    (job / "manifest.json").write_text(json.dumps({"tokenizer": {"uri": str(tok_dir)}}))
    train(TrainConfig(data=str(job), out=str(root / "run"), steps=2, batch_size=2, context=128, val_fraction=0.3))
    return root, tok


def test_generate_writes_prompt_generated_and_true_images(trained):
    root, tok = trained
    cfg = GenerateConfig(
        checkpoint=str(root / "run"), out=str(root / "sheet.png"), prompt_images=2, generate=1, top_k=20
    )
    result = generate(cfg)
    assert result.prompt.shape == (2, 64) and result.generated.shape == (1, 64)
    assert result.generated.max() < tok.codebook_size  # codes only, never specials
    assert result.held_out
    sheet = Image.open(root / "sheet.png")
    size = tok.image_size
    rows = 2 if len(result.truth) else 1  # the data row shows the sentence's own next image, when it has one
    assert sheet.size == (90 + 3 * (size + 4) + 4, rows * (size + 4) + 4)
    again = generate(cfg)
    assert np.array_equal(again.generated, result.generated)  # seeded by hashing


def test_a_tokenizer_that_did_not_make_the_data_is_refused(trained, tmp_path):
    root, _ = trained
    other = tiny_tokenizer(tmp_path / "other", codebook=32)
    cfg = GenerateConfig(checkpoint=str(root / "run"), out=str(tmp_path / "x.png"), tokenizer=str(other))
    with pytest.raises(DataError, match="did not make"):
        generate(cfg)


def test_cached_greedy_continuation_equals_full_recomputation_also_past_the_context():
    vocab = Vocab(64)
    model = LLaMA(model_config("tiny", vocab, 24))
    init_weights(model, 3)
    model.eval()
    prompt = np.arange(10, dtype=np.uint16)
    cfg = GenerateConfig(checkpoint="-", out="-", greedy=True)
    got = continue_codes(model, vocab, prompt, 30, cfg, keep=16)
    tokens, start, expected = [vocab.bos, *range(10)], 0, []
    with torch.no_grad():
        for _ in range(30):
            if len(tokens) - start > 24:  # the window outgrows the context: keep the last 16 tokens
                start = len(tokens) - 16
            logits = model(torch.tensor([tokens[start:]]))[0, -1, :64]
            expected.append(int(logits.argmax()))
            tokens.append(expected[-1])
    assert got.tolist() == expected
