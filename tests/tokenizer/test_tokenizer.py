import warnings

import numpy as np
import pytest
import torch

from lvm_data.tokenizer import CheckpointError, Tokenizer, cpu, load
from lvm_data.tokenizer.checkpoint import SIGNED_RANGE, UNIT_RANGE, Checkpoint
from lvm_data.tokenizer.tokenizer import fingerprint, ieee_float32, resolve_device

from .layouts import FIXTURE_MODEL, MICRO, fixture_images, margins


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(FIXTURE_MODEL / "expected.npz"))


@pytest.fixture(scope="module")
def fixture_tokenizer():
    return load(str(FIXTURE_MODEL), device="cpu", batch_size=4)  # 7 images: chunks of 4 and 3


def micro_tokenizer(state, **options) -> Tokenizer:
    return Tokenizer(Checkpoint("open-muse", MICRO, state, UNIT_RANGE, []), name="micro", device="cpu", **options)


@pytest.fixture(scope="module")
def fixture_run(fixture_tokenizer, reference):
    """One encode of the 7 images and one decode of the expected codes, keeping the float tensors inside."""
    tok, latents, recons = fixture_tokenizer, [], []
    encoder, decode = tok._encoder, tok.model.decode
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tok, "_encoder", lambda x: latents.append(encoder(x)) or latents[-1])
        patch.setattr(tok.model, "decode", lambda c: recons.append(decode(c)) or recons[-1])
        codes, images = tok.encode(fixture_images()), tok.decode(reference["codes"])
    return codes, torch.cat(latents).numpy(), images, torch.cat(recons).numpy()


def test_fixture_codes_are_exact_at_every_position(fixture_run, reference):
    assert reference["margin"].min() >= 0.1  # the README's premise for exact float32 codes
    codes = fixture_run[0]
    assert codes.dtype == np.uint16 and codes.shape == (7, 256)
    np.testing.assert_array_equal(codes, reference["codes"])


def test_fixture_latents_within_the_readme_tolerance(fixture_run, reference):
    assert np.abs(fixture_run[1] - reference["latents"]).max() <= 1e-3


def test_fixture_reconstruction_within_the_readme_tolerance(fixture_run, reference):
    assert np.abs(fixture_run[3] - reference["recon"]).max() <= 2e-3


def test_fixture_decode_matches_the_reference_uint8_within_one(fixture_run, reference):
    images = fixture_run[2]
    assert images.dtype == np.uint8 and images.shape == (7, 256, 256, 3)
    assert np.abs(images.astype(int) - reference["recon_uint8"]).max() <= 1


def test_fixture_properties(fixture_tokenizer):
    tok = fixture_tokenizer
    assert (tok.codebook_size, tok.tokens_per_image, tok.image_size) == (8192, 256, 256)
    assert tok.num_parameters == 9_822_627
    assert tok.format == "open-muse" and tok.input_range == (0.0, 1.0)
    assert tok.name == str(FIXTURE_MODEL)


def test_encode_chunks_any_number_of_images(micro_weights, micro_images):
    whole = micro_tokenizer(micro_weights, batch_size=8).encode(micro_images)
    chunked = micro_tokenizer(micro_weights, batch_size=2).encode(micro_images)
    np.testing.assert_array_equal(whole, chunked)
    assert micro_tokenizer(micro_weights).encode(micro_images[:0]).shape == (0, MICRO.tokens_per_image)
    assert micro_tokenizer(micro_weights).decode(whole[:0]).shape == (0, 16, 16, 3)


def test_codes_are_nearest_rows_in_raster_order(micro_weights, micro_images):
    tok = micro_tokenizer(micro_weights)
    codes = tok.encode(micro_images)
    with torch.inference_mode():
        x = (torch.from_numpy(micro_images).permute(0, 3, 1, 2).float() / 255).contiguous()
        z = tok.model.latents(x).double().numpy()  # (N, D, 8, 8)
    book = micro_weights["quantize.embedding.weight"].double().numpy()  # (K, D)
    for row in range(8):
        for col in range(8):
            distances = ((z[:, None, :, row, col] - book[None]) ** 2).sum(-1)  # (N, K)
            np.testing.assert_array_equal(codes[:, row * 8 + col], distances.argmin(1))


def test_bad_inputs_are_refused_with_the_expected_shape(micro_weights):
    tok = micro_tokenizer(micro_weights)
    with pytest.raises(ValueError, match=r"uint8 RGB images of shape \(N, 16, 16, 3\)"):
        tok.encode(np.zeros((1, 16, 16, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 16, 16, 3\)"):
        tok.encode(np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"codes must be \(N, 64\)"):
        tok.decode(np.zeros((1, 63), np.uint16))
    with pytest.raises(ValueError, match=r"0\.\.15"):
        tok.decode(np.full((1, 64), 16, np.uint16))
    with pytest.raises(ValueError, match="dtype 'float16'"):
        micro_tokenizer(micro_weights, dtype="float16")


def test_signed_range_tokenizer_scales_pixels(micro_weights, micro_images):
    signed = Tokenizer(Checkpoint("taming", MICRO, micro_weights, SIGNED_RANGE, []), name="s", device="cpu")
    x = torch.from_numpy(micro_images).permute(0, 3, 1, 2).float() / 255.0 * 2 - 1
    with torch.inference_mode():
        expected = signed.model.encode(x).numpy()
    np.testing.assert_array_equal(signed.encode(micro_images), expected)


def test_fingerprint_covers_weights_config_and_input_range(micro_weights):
    base = Checkpoint("open-muse", MICRO, micro_weights, UNIT_RANGE, [])
    again = Checkpoint("open-muse", MICRO, {k: v.clone() for k, v in micro_weights.items()}, UNIT_RANGE, [])
    nudged = dict(micro_weights)
    nudged["quant_conv.bias"] = micro_weights["quant_conv.bias"] + 1e-6
    assert fingerprint(base) == fingerprint(again) == micro_tokenizer(micro_weights).fingerprint
    assert fingerprint(Checkpoint("open-muse", MICRO, nudged, UNIT_RANGE, [])) != fingerprint(base)
    assert fingerprint(Checkpoint("taming", MICRO, micro_weights, SIGNED_RANGE, [])) != fingerprint(base)


def test_bfloat16_encoder_keeps_float32_nearest_code_search(micro_weights, micro_images, monkeypatch):
    tok = micro_tokenizer(micro_weights, dtype="bfloat16")
    seen = []
    nearest = tok.model.quantize.nearest
    monkeypatch.setattr(tok.model.quantize, "nearest", lambda z: seen.append(z.dtype) or nearest(z))
    codes = tok.encode(micro_images)
    assert seen == [torch.float32]
    exact = micro_tokenizer(micro_weights).encode(micro_images)
    assert (codes == exact).mean() > 0.5  # bf16 moves some codes, most stay


def test_bfloat16_on_a_cpu_that_emulates_it_is_logged_once_per_tokenizer(micro_weights, monkeypatch, caplog):
    monkeypatch.setattr(cpu, "cpu_has_bf16_kernels", lambda: False)  # as on an AVX2-only CPU
    with caplog.at_level("WARNING", logger="lvm_data.tokenizer"):
        micro_tokenizer(micro_weights, dtype="bfloat16")
        micro_tokenizer(micro_weights)  # float32: nothing to say
    [record] = caplog.records
    assert record.getMessage().startswith("dtype bfloat16 on this CPU (") and "float32 (or auto)" in record.getMessage()
    monkeypatch.setattr(cpu, "cpu_has_bf16_kernels", lambda: True)
    caplog.clear()
    micro_tokenizer(micro_weights, dtype="bfloat16")
    assert not caplog.records


def test_compiled_encoder_pads_the_last_chunk_and_matches_eager(micro_weights, micro_images, monkeypatch):
    compiled = micro_tokenizer(micro_weights, batch_size=2, compile="eager")  # dynamo tracing, no codegen
    shapes = []
    latents = compiled.model.latents
    monkeypatch.setattr(compiled.model, "latents", lambda x: shapes.append(tuple(x.shape)) or latents(x))
    compiled._encoder = compiled.model.latents  # observe what reaches the encoder
    codes = compiled.encode(micro_images)  # 3 images: chunks of 2 and 1 (padded to 2)
    assert shapes == [(2, 3, 16, 16), (2, 3, 16, 16)]
    np.testing.assert_array_equal(codes, micro_tokenizer(micro_weights).encode(micro_images))


def test_torch_compile_eager_backend_runs(micro_weights, micro_images):
    codes = micro_tokenizer(micro_weights, batch_size=4, compile="eager").encode(micro_images)
    np.testing.assert_array_equal(codes, micro_tokenizer(micro_weights).encode(micro_images))


def test_read_only_images_encode_without_a_torch_warning(micro_weights, micro_images):
    read_only = np.frombuffer(micro_images.tobytes(), np.uint8).reshape(micro_images.shape)
    assert not read_only.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        codes = micro_tokenizer(micro_weights).encode(read_only)
    np.testing.assert_array_equal(codes, micro_tokenizer(micro_weights).encode(micro_images))


def test_channels_last_gives_the_same_codes(micro_weights, micro_images):
    assert margins(micro_weights, MICRO, micro_images).min() > 1e-2  # far above channels-last GroupNorm's error
    np.testing.assert_array_equal(
        micro_tokenizer(micro_weights, channels_last=True).encode(micro_images),
        micro_tokenizer(micro_weights).encode(micro_images),
    )


def test_missing_cuda_is_an_error_not_a_fallback(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda")


def test_ieee_float32_switches_tf32_off_on_cuda_and_restores():
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    before = (matmul.fp32_precision, conv.fp32_precision)
    try:
        conv.fp32_precision = "tf32"
        with ieee_float32(torch.device("cuda")):
            assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")
        assert conv.fp32_precision == "tf32"
        with ieee_float32(torch.device("cpu")):
            assert conv.fp32_precision == "tf32"
    finally:
        matmul.fp32_precision, conv.fp32_precision = before


def test_codebooks_beyond_uint16_are_refused():
    from lvm_data.tokenizer.model import VQGANConfig

    config = VQGANConfig(resolution=16, hidden_channels=32, channel_mult=(1, 2), num_embeddings=70000)
    with pytest.raises(CheckpointError, match="do not fit uint16"):
        Tokenizer(Checkpoint("open-muse", config, {}, UNIT_RANGE, []), name="big", device="cpu")
