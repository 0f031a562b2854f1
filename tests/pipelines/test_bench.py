"""benchmarks/pipeline.py's encoder-vs-pipeline comparison (run_ceiling) on this machine's CPU with a tiny
checkpoint, its timing helpers with a fake clock, and the benchmarks/pipeline.py command line. Figures are
printed by the benchmark, never asserted."""

import itertools
import json

import numpy as np
import pytest
import torch

from benchmarks.pipeline import (
    CeilingBench,
    encode_tf32,
    format_ceiling,
    run_ceiling,
    time_batches,
    tokenizer_location,
    write_photos,
)
from benchmarks.tokenizer import random_checkpoint
from lvm_data import tokenizer as lvm_tokenizer
from lvm_data.testing import write_tiny_checkpoint
from lvm_data.tokenizer.tokenizer import fingerprint


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("tiny")))


def test_ceiling_compares_the_encoder_alone_with_the_pipeline_over_the_same_images(tmp_path, tiny):
    cfg = CeilingBench(
        tokenizer=tiny,
        images=8,
        small=4,
        batch_size=4,
        shard_size=2,
        device="cpu",
        warmup=1,
        fp32_images=4,
        pipeline_warmup=False,
        workdir=str(tmp_path),
    )
    r = run_ceiling(cfg)
    assert (r["images"], r["small_images"], r["sentences"]) == (8, 4, 8)
    assert r["identical"] == 8  # the pipeline wrote exactly the codes of the encoder alone: same frames, same model
    assert [(e["label"], e["images"]) for e in r["encoder"]] == [
        ("eager float32 (the job's setting)", 8),
        ("eager float32", 4),
    ]
    assert r["runner"] == "FnApiRunner(in_memory)" and r["manifest_device"] == "cpu"
    if r["steady_ips"] is not None:  # None only when the two runs' times are within noise of each other
        assert r["ratio"] == pytest.approx(r["steady_ips"] / r["encoder"][0]["ips"])
        assert r["steady_ips"] == pytest.approx(4 / (r["full_s"] - r["small_s"]))
    text = format_ceiling(r)
    assert "encoder alone, eager float32 (the job's setting)" in text and "identical codes" in text
    assert "8 of 8 sentences" in text and ("(target >= 0.9)" in text or "steady rate: n/a" in text)


def test_tf32_encode_is_the_tokenizer_encode_where_tf32_does_not_apply(tiny):
    tokenizer = lvm_tokenizer.load(tiny, device="cpu", batch_size=4)
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    before = torch.backends.cuda.matmul.fp32_precision
    assert np.array_equal(encode_tf32(tokenizer, images), tokenizer.encode(images))
    assert torch.backends.cuda.matmul.fp32_precision == before  # restored


def test_time_batches_excludes_warmup_and_keeps_batch_order():
    calls, ticks = [], itertools.count(start=10.0, step=5.0)
    frames = np.arange(5)[:, None].repeat(2, axis=1)

    def encode(batch):
        calls.append(batch[:, 0].tolist())
        return batch + 1

    seconds, codes = time_batches(encode, frames, 2, warmup=2, device=torch.device("cpu"), clock=lambda: next(ticks))
    assert calls == [[0, 1], [2, 3], [0, 1], [2, 3], [4]]  # two untimed batches, then every batch once
    assert seconds == 5.0 and codes[:, 0].tolist() == [1, 2, 3, 4, 5]


def test_named_configs_are_written_once_as_a_loadable_folder(tmp_path):
    folder = tokenizer_location("fixture-small", tmp_path)
    assert json.loads((tmp_path / "tokenizer-fixture-small" / "config.json").read_text())["hidden_channels"] == 32
    assert lvm_tokenizer.load(folder, device="cpu").fingerprint == fingerprint(random_checkpoint("fixture-small"))
    stamp = (tmp_path / "tokenizer-fixture-small" / "model.safetensors").stat().st_mtime_ns
    assert tokenizer_location("fixture-small", tmp_path) == folder
    assert (tmp_path / "tokenizer-fixture-small" / "model.safetensors").stat().st_mtime_ns == stamp
    assert tokenizer_location("builtin:tiny", tmp_path) == "builtin:tiny"


def test_jpeg_corpus_is_rgb_jpeg(tmp_path):
    from PIL import Image

    paths = write_photos(tmp_path, 20, jpeg=True)
    assert len({p.name for p in paths}) == 20 and all(p.suffix == ".jpg" for p in paths)
    with Image.open(paths[0]) as image:
        assert (image.format, image.mode) == ("JPEG", "RGB")


def test_command_line_presets():
    import benchmarks.pipeline as command

    assert command.parse(["--images", "8"]) == (None, ["--images", "8"])  # the pipeline-vs-loop bench
    gpu, _ = command.parse(["--gpu", "--small", "1024", "--experiments=x"])
    assert (gpu.tokenizer, gpu.device, gpu.batch_size, gpu.images, gpu.small) == ("lvm", "cuda", 256, 16384, 1024)
    assert gpu.jpeg and gpu.pipeline_warmup and gpu.compile == "auto" and gpu.dtype == "auto"
    assert gpu.beam_args == ("--experiments=x",)  # one worker process: its executor decodes in child processes
    mine, _ = command.parse(["--gpu", "--direct_num_workers", "3", "--png", "--compile", "false"])
    assert mine.beam_args == ("--direct_num_workers", "3") and not mine.jpeg and mine.compile is False
    cpu, _ = command.parse(["--vs-encoder", "--tokenizer", "fixture-small", "--device", "cpu", "--images", "64"])
    assert (cpu.tokenizer, cpu.device, cpu.images, cpu.batch_size, cpu.beam_args) == (
        "fixture-small",
        "cpu",
        64,
        256,
        (),
    )


def test_standin_bench_measures_capacity_then_the_pipeline_at_a_share_of_it(tmp_path):
    from benchmarks.standin import StandInBench, format_standin, run_standin

    r = run_standin(
        StandInBench(images=24, small=8, share=0.5, batch_size=4, shard_size=8, workers=1, workdir=str(tmp_path))
    )
    assert r["images"] == 24 and r["small"] == 8 and r["workers"] == 1
    assert r["rate"] == pytest.approx(0.5 * r["capacity_ips"]) and r["share"] == pytest.approx(0.5)
    assert r["ratio"] == pytest.approx(r["pipeline_ips"] / r["rate"]) and r["same_rows"]
    text = format_standin(r)
    assert "decode capacity, 1 decode workers" in text and "ratio to RATE" in text and "plain loop" in text
