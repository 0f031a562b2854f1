import torch
from click.testing import CliRunner

from lvm_data import cli
from lvm_data.tokenizer import card, cpu
from lvm_data.tokenizer.card import BuildReport, CodebookUsage
from lvm_data.tokenizer.training import TrainConfig, TrainResult


def test_train_command_builds_the_config_sets_threads_and_prints_the_figures(monkeypatch, tmp_path):
    seen = {}

    def fake_build(config, out, *, log=None):
        seen.update(config=config, out=out, threads=torch.get_num_threads())
        log(
            {
                "step": 1,
                "phase": "autoencoder",
                "loss": 0.5,
                "psnr": 9.0,
                "latent_rank": 3.0,
                "codes_used": 0,
                "restarts": 0,
                "seconds": 1.0,
            }
        )
        usage = CodebookUsage(256, 100, 8192, 50.0)
        return BuildReport({"a.png": 20.0, "b.png": 18.0}, usage, usage, TrainResult(None, [], 120.0, 0), 1000, 130.0)

    monkeypatch.setattr(card, "build_builtin", fake_build)
    before = torch.get_num_threads()
    try:
        result = CliRunner().invoke(
            cli.main,
            [
                "tokenizer",
                "train",
                "--out",
                str(tmp_path / "t"),
                "--steps",
                "12",
                "--batch-size",
                "3",
                "--crop",
                "64",
                "--seed",
                "4",
                "--threads",
                "1",
                "--no-bf16",
            ],
        )
    finally:
        torch.set_num_threads(before)
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert (config.steps, config.batch_size, config.crop, config.seed, config.bf16) == (12, 3, 64, 4, False)
    assert seen["threads"] == 1 and seen["out"] == tmp_path / "t"
    assert "a.png: 20.00 dB" in result.output and "mean held-out PSNR 19.00 dB" in result.output
    assert "step 1 autoencoder" in result.output and "latent-rank 3.0" in result.output


def test_train_command_rejects_a_crop_the_model_cannot_tile(tmp_path):
    result = CliRunner().invoke(cli.main, ["tokenizer", "train", "--out", str(tmp_path), "--crop", "100"])
    assert result.exit_code == 2
    assert "multiple of the model's downsampling factor 16" in result.output


def test_command_defaults_are_the_shipped_recipe(monkeypatch, tmp_path):
    seen = {}

    def fake_build(config, out, *, log=None):
        seen["config"] = config
        raise SystemExit(0)

    monkeypatch.setattr(card, "build_builtin", fake_build)
    before = torch.get_num_threads()
    try:
        CliRunner().invoke(cli.main, ["tokenizer", "train", "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(before)
    assert seen["config"] == TrainConfig()


def test_train_command_warns_once_when_bf16_is_emulated_here(monkeypatch, tmp_path):
    def stop_before_training(config, out, *, log=None):
        raise SystemExit(0)

    monkeypatch.setattr(card, "build_builtin", stop_before_training)
    monkeypatch.setattr(cpu, "cpu_has_bf16_kernels", lambda: False)  # as on an AVX2-only CPU
    before = torch.get_num_threads()
    try:
        emulated = CliRunner().invoke(cli.main, ["tokenizer", "train", "--out", str(tmp_path)])
        float32 = CliRunner().invoke(cli.main, ["tokenizer", "train", "--out", str(tmp_path), "--no-bf16"])
    finally:
        torch.set_num_threads(before)
    assert emulated.output.count("is emulated") == 1 and "--no-bf16" in emulated.output
    assert "emulated" not in float32.output
