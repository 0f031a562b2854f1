import json

from click.testing import CliRunner

from lvm_data import tokenizer as vq
from lvm_data.cli import main

from .synth import random_corpus, tiny_tokenizer


def test_train_generate_export_from_the_command_line(tmp_path):
    tok_dir = tiny_tokenizer(tmp_path / "tok")
    tok = vq.load(str(tok_dir), device="cpu")
    job = tmp_path / "job"
    random_corpus(job, files=1, per_file=12, codebook=64, tpi=64, fingerprint=tok.fingerprint, row_group_size=6)
    (job / "manifest.json").write_text(json.dumps({"tokenizer": {"uri": str(tok_dir)}}))
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(
        main,
        [
            "train",
            str(job),
            "--model",
            "tiny",
            "--steps",
            "3",
            "--out",
            str(run),
            "--batch-size",
            "2",
            "--context",
            "128",
            "--eval-every",
            "3",
            "--val-fraction",
            "0.3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "validation loss" in result.output and "vs unigram" in result.output and "tokens/s" in result.output
    lines = result.output.splitlines()
    assert any(line.startswith("all 2 sources (") and "same-source unigrams" in line for line in lines)
    assert (run / "log.jsonl").exists() and (run / "loss.png").exists()

    sheet = tmp_path / "sheet.png"
    result = runner.invoke(
        main,
        [
            "generate",
            str(run),
            "--data",
            str(job),
            "--prompt-images",
            "1",
            "--generate",
            "2",
            "--out",
            str(sheet),
            "--greedy",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sheet.read_bytes()[:4] == b"\x89PNG"

    result = runner.invoke(main, ["export", str(run), "--out", str(tmp_path / "hf")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["vocab_size"] == 164


def test_bad_data_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["train", str(tmp_path / "missing"), "--steps", "1"])
    assert result.exit_code == 1
    assert "no Parquet sentence files found" in result.output and "Traceback" not in result.output


def test_tie_embeddings_and_rope_theta_reach_the_model(tmp_path):
    from lvm_data.train import checkpoint

    random_corpus(tmp_path / "job", files=1, per_file=6, codebook=64, tpi=8)
    run = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        [
            "train",
            str(tmp_path / "job"),
            "--steps",
            "1",
            "--out",
            str(run),
            "--batch-size",
            "1",
            "--context",
            "32",
            "--tie-embeddings",
            "--rope-theta",
            "500",
        ],
    )
    assert result.exit_code == 0, result.output
    model, _ = checkpoint.load_model(str(run))
    assert model.config.tie_embeddings and model.lm_head.weight is model.embed_tokens.weight
    assert model.config.rope_theta == 500.0
