import json

import numpy as np
import pytest
import torch

from lvm_data.determinism import rng_for
from lvm_data.media.resize import resize
from lvm_data.tokenizer import cpu, load
from lvm_data.tokenizer.model import VQGANConfig
from lvm_data.tokenizer.training import (
    MUSE_CONFIG_KEYS,
    EmaCodebook,
    TrainConfig,
    flatten,
    heldout_psnr,
    muse_config,
    new_model,
    save_checkpoint,
    slow_bf16_warning,
    step_losses,
    to_tensor,
    train,
    whiten_latents,
)
from lvm_data.tokenizer.training_data import CANVAS, TrainingData, sample_batch

from .layouts import fixture_images

# f = 4, 8 x 8 codes per 32 x 32 crop: trains in seconds on one thread.
SMALL = VQGANConfig(
    resolution=32,
    hidden_channels=32,
    channel_mult=(1, 1, 1),
    num_res_blocks=1,
    z_channels=4,
    quantized_embed_dim=4,
    num_embeddings=32,
)


def small_config(**overrides) -> TrainConfig:
    values = dict(
        steps=40,
        batch_size=4,
        crop=32,
        lr=2e-3,
        warmup_steps=5,
        kmeans_batches=4,
        kmeans_iters=3,
        restart_every=10,
        log_every=10,
        eval_every=40,
        model=SMALL,
    )
    return TrainConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def data() -> TrainingData:
    photos = fixture_images(3)  # real photos, 256 x 256
    return TrainingData(
        [resize(p, CANVAS) for p in photos],
        ["a", "b", "c"],
        np.full(3, 1 / 3),
        heldout=[resize(p, 32) for p in photos],
        heldout_names=["a", "b", "c"],
    )


def test_a_few_steps_make_the_round_trip_much_better(data):
    cfg = small_config()
    before = heldout_psnr(new_model(SMALL, cfg.seed), data.heldout)
    result = train(cfg, data)
    after = heldout_psnr(result.model, data.heldout)
    assert after > before + 3.0
    assert [row["phase"] for row in result.history] == ["vq", "vq", "vq", "decoder"]
    assert result.history[-1]["mse"] < result.history[0]["mse"]
    assert result.history[-1]["heldout_frames_psnr"] == pytest.approx(after)


def test_same_seed_same_weights_other_seed_other_weights(data):
    cfg = small_config(steps=8, kmeans_batches=2)
    a = train(cfg, data).model.state_dict()
    b = train(cfg, data).model.state_dict()
    c = train(small_config(steps=8, kmeans_batches=2, seed=1), data).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["quantize.embedding.weight"], c["quantize.embedding.weight"])


def test_training_leaves_the_global_torch_rng_alone(data):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(small_config(steps=3, kmeans_batches=1), data)
    assert torch.equal(torch.rand(3), expected)


def test_kmeans_without_a_pass_is_refused_by_name(data):
    """Found by the type check: kmeans_iters=0 ended in a NameError."""
    with pytest.raises(ValueError, match="kmeans_iters is 0"):
        train(small_config(steps=3, kmeans_batches=1, kmeans_iters=0), data)


def test_phases_and_learning_rate_schedule():
    cfg = TrainConfig(steps=100, warmup_steps=10, autoencoder_fraction=0.1, decoder_fraction=0.2)
    assert [cfg.phase(s) for s in (0, 9, 10, 79, 80, 99)] == ["autoencoder"] * 2 + ["vq"] * 2 + ["decoder"] * 2
    assert cfg.lr_at(0) == pytest.approx(cfg.lr / 10)
    assert cfg.lr_at(9) == pytest.approx(cfg.lr)
    assert cfg.lr_at(99) == pytest.approx(0.05 * cfg.lr, rel=0.01)
    restart_steps = [s for s in range(100) if cfg.restarts_at(s)]
    assert restart_steps and all(10 <= s < 10 + 0.6 * 70 for s in restart_steps)
    with pytest.raises(ValueError, match="multiple"):
        TrainConfig(crop=100)


def test_ema_codebook_follows_assigned_latents_and_restarts_dead_codes():
    weight = torch.zeros(3, 2)
    book = EmaCodebook(weight, decay=0.0)
    flat = torch.tensor([[1.0, 1.0], [3.0, 1.0], [5.0, 5.0]])
    book.update(flat, torch.tensor([0, 0, 1]))
    torch.testing.assert_close(weight[:2], torch.tensor([[2.0, 1.0], [5.0, 5.0]]), rtol=1e-4, atol=1e-4)
    assert int((book.size >= 0.5).sum()) == 2 and book.take_seen() == 2 and book.take_seen() == 0
    restarted = book.restart_dead(flat, threshold=0.5, generator=torch.Generator().manual_seed(0))
    assert restarted == 1
    assert torch.cdist(weight[2:], flat).min() < 0.1  # row 2 now sits on one of the latents
    assert int((book.size >= 0.5).sum()) == 3


def test_whitening_keeps_the_continuous_autoencoder_and_whitens_the_latents(data):
    model = new_model(SMALL, 0)
    x = to_tensor(sample_batch(data, rng_for(0, "w"), 4, 32))
    with torch.no_grad():
        before = model.decode_latents(model.latents(x))
        moved = whiten_latents(model, flatten(model.latents(x)), floor=1e-6)
        after = model.decode_latents(model.latents(x))
        now = flatten(model.latents(x))
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(moved, now, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(torch.cov(now.t()), torch.eye(4), atol=1e-3, rtol=1e-3)


def test_phases_train_the_right_parts(data):
    cfg = small_config()
    x = to_tensor(sample_batch(data, rng_for(0, "p"), 2, 32))
    for phase, encoder_trains, codebook_moves in (
        ("autoencoder", True, False),
        ("vq", True, True),
        ("decoder", False, False),
    ):
        model = new_model(SMALL, 0)
        model.quantize.embedding.weight.requires_grad_(False)
        book = EmaCodebook(model.quantize.embedding.weight, 0.9)
        before = model.quantize.embedding.weight.clone()
        loss, parts = step_losses(model, x, phase, cfg, book)
        loss.backward()
        assert (model.encoder.conv_in.weight.grad is not None) == encoder_trains, phase
        assert model.decoder.conv_out.weight.grad is not None
        assert (not torch.equal(before, model.quantize.embedding.weight)) == codebook_moves, phase
        assert (parts["commit"] > 0) == (phase == "vq")


def test_saved_folder_is_an_open_muse_checkpoint_that_loads(data, tmp_path):
    model = new_model(SMALL, 0).eval()
    save_checkpoint(model, tmp_path / "out")
    raw = json.loads((tmp_path / "out" / "config.json").read_text())
    assert set(raw) == set(MUSE_CONFIG_KEYS) | {"_class_name", "_version"}
    assert raw["_class_name"] == "VQGANModel" and raw["channel_mult"] == [1, 1, 1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.json", "model.safetensors"]
    tokenizer = load(str(tmp_path / "out"), device="cpu")
    images = np.stack(data.heldout)
    with torch.no_grad():
        expected = model.encode(to_tensor(images)).numpy()
    np.testing.assert_array_equal(tokenizer.encode(images), expected)


def test_muse_config_refuses_keys_open_muse_lacks():
    with pytest.raises(ValueError, match="decoder_"):
        muse_config(VQGANConfig(decoder_res_blocks=3))
    assert muse_config(VQGANConfig())["num_embeddings"] == 8192


def test_bf16_on_a_cpu_that_emulates_it_warns_and_says_to_pass_no_bf16(monkeypatch):
    monkeypatch.setattr(cpu, "cpu_has_bf16_kernels", lambda: False)
    warning = slow_bf16_warning(TrainConfig())  # bf16 is the recipe's default
    assert warning is not None and "--bf16 on this CPU" in warning and warning.endswith("train here with --no-bf16")
    assert slow_bf16_warning(TrainConfig(bf16=False)) is None
    monkeypatch.setattr(cpu, "cpu_has_bf16_kernels", lambda: True)
    assert slow_bf16_warning(TrainConfig()) is None
