import torch

from lvm_data.train.config import ModelConfig, Vocab, model_config, parameter_count
from lvm_data.train.model import LLaMA, init_weights


def tiny(context=64) -> LLaMA:
    model = LLaMA(model_config("tiny", Vocab(64), context))
    init_weights(model, 0)
    return model.eval()


def test_forward_shape_and_parameter_count():
    model = tiny()
    logits = model(torch.randint(0, 164, (2, 10)))
    assert logits.shape == (2, 10, 164)
    assert model.num_parameters() == parameter_count(model.config)


def test_attention_is_causal():
    model = tiny()
    x = torch.randint(0, 164, (1, 12))
    y = x.clone()
    y[0, 7] = (y[0, 7] + 1) % 164
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.equal(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_kv_cache_gives_the_full_forward_logits():
    model = tiny()
    x = torch.randint(0, 164, (2, 20))
    with torch.no_grad():
        full = model(x)
        cache = model.new_cache(2, 32)
        parts = [model(x[:, :9], cache)] + [model(x[:, t : t + 1], cache) for t in range(9, 17)]
        parts.append(model(x[:, 17:], cache))
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.pos == 20


def test_init_is_seeded_by_hashing():
    a, b, c = (
        LLaMA(ModelConfig(vocab_size=80, hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2))
        for _ in range(3)
    )
    init_weights(a, 1)
    init_weights(b, 1)
    init_weights(c, 2)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.lm_head.weight, c.lm_head.weight)
    assert torch.equal(a.norm.weight, torch.ones(32))
    assert abs(float(a.embed_tokens.weight.detach().std()) - 0.02) < 0.002


def test_tied_embeddings_share_one_matrix_with_the_head():
    model = LLaMA(model_config("tiny", Vocab(64), 64, tie_embeddings=True))
    init_weights(model, 0)
    assert model.lm_head.weight is model.embed_tokens.weight
    assert model.num_parameters() == parameter_count(model.config)
    assert parameter_count(model.config) == parameter_count(model_config("tiny", Vocab(64), 64)) - 164 * 128
    restored = LLaMA(model.config)
    restored.load_state_dict(model.state_dict())
    assert restored.lm_head.weight is restored.embed_tokens.weight
    x = torch.randint(0, 164, (1, 12))
    with torch.no_grad():
        torch.testing.assert_close(restored(x), model(x))
    assert (
        ModelConfig.from_dict(
            {k: v for k, v in model_config("tiny", Vocab(64)).to_dict().items() if k != "tie_embeddings"}
        ).tie_embeddings
        is False
    )  # checkpoints from before
