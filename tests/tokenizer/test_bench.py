import itertools

import torch
from click.testing import CliRunner

from benchmarks.tokenizer import (
    NAMED_CONFIGS,
    BenchSettings,
    format_rate,
    format_result,
    random_checkpoint,
    run_bench,
    time_encode,
)
from lvm_data.cli import main
from lvm_data.tokenizer import cpu
from lvm_data.tokenizer.model import VQGANConfig
from lvm_data.tokenizer.tokenizer import Tokenizer, fingerprint

from .layouts import MICRO, write_muse


def test_named_configs_get_seeded_weights_without_touching_the_global_rng():
    state = torch.random.get_rng_state()
    first, second = random_checkpoint("fixture-small"), random_checkpoint("fixture-small")
    assert torch.equal(torch.random.get_rng_state(), state)
    assert fingerprint(first) == fingerprint(second)
    assert first.config == VQGANConfig(hidden_channels=32) and NAMED_CONFIGS["lvm"] == VQGANConfig()


def test_time_encode_counts_images_between_clock_reads(micro_weights):
    from lvm_data.tokenizer.checkpoint import UNIT_RANGE, Checkpoint

    tok = Tokenizer(Checkpoint("x", MICRO, micro_weights, UNIT_RANGE, []), name="m", device="cpu", batch_size=3)
    calls = []
    encode = tok.encode
    tok.encode = lambda images: calls.append(len(images)) or encode(images)
    ticks = itertools.count(10.0, 2.5)
    images, seconds = time_encode(tok, batches=4, warmup=2, clock=lambda: next(ticks))
    assert calls == [3] * 6 and (images, seconds) == (12, 2.5)


def test_bench_reports_its_settings(tmp_path, micro_weights):
    folder = write_muse(tmp_path / "ckpt", MICRO, micro_weights)
    settings = BenchSettings(model=str(folder), device="cpu", batch_size=2, batches=2, warmup=0)
    ticks = itertools.count(0.0, 0.5)
    result = run_bench(settings, clock=lambda: next(ticks))
    assert (result.images, result.seconds, result.images_per_s) == (4, 0.5, 8.0)
    line = format_result(result)
    assert line.startswith("encode 8.0 images/s") and "device=cpu dtype=float32 batch=2 compile=False" in line


def test_cli_bench_tokenizer(tmp_path, micro_weights):
    folder = write_muse(tmp_path / "ckpt", MICRO, micro_weights)
    args = ["bench", "tokenizer", "--config", str(folder), "--device", "cpu", "--batch-size", "2", "--batches", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "images/s" in result.output and f"config={folder}" in result.output and "batch=2" in result.output
    bad = CliRunner().invoke(main, ["bench", "tokenizer", "--config", str(tmp_path / "nothing")])
    assert bad.exit_code == 1 and "no such checkpoint" in bad.output


def test_rates_below_one_keep_two_significant_digits():
    assert (format_rate(1557.04), format_rate(1.64), format_rate(0.0092)) == ("1,557.0", "1.6", "0.0092")


def test_bench_in_bfloat16_on_a_cpu_that_emulates_it_warns_once(tmp_path, micro_weights, monkeypatch):
    monkeypatch.setattr(cpu, "cpu_has_bf16_kernels", lambda: False)  # as on an AVX2-only CPU
    folder = write_muse(tmp_path / "ckpt", MICRO, micro_weights)
    args = ["bench", "tokenizer", "--config", str(folder), "--device", "cpu", "--batch-size", "1", "--warmup", "0"]
    bf16 = CliRunner().invoke(main, [*args, "--dtype", "bfloat16", "--batches", "1"])
    assert bf16.exit_code == 0, bf16.output
    assert bf16.output.count("warning: dtype bfloat16 on this CPU") == 1 and "dtype=bfloat16" in bf16.output
    float32 = CliRunner().invoke(main, [*args, "--batches", "1"])
    assert float32.exit_code == 0 and "warning" not in float32.output
