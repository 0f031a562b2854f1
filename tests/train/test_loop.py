import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lvm_data import storage
from lvm_data.tokenizer import cpu
from lvm_data.train import checkpoint, curves, loop
from lvm_data.train.config import TrainConfig, Vocab
from lvm_data.train.loop import lr_at, train
from lvm_data.train.stream import Packer, StreamLoader

from .synth import mix_rows, random_corpus, structured_corpus


def test_lr_warms_up_then_decays_by_cosine_to_min_lr():
    cfg = TrainConfig(data="d", out="o", steps=100, lr=1e-3, min_lr=1e-4, warmup_steps=10, decay_steps=60)
    lrs = [lr_at(s, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert lrs[35] == pytest.approx(1e-4 + 0.5 * 9e-4)  # halfway through the cosine
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[60:] == [1e-4] * 40


class Interrupted(Exception):
    pass


def records(out):
    return [
        {k: v for k, v in json.loads(line).items() if k != "tokens_per_s"}
        for line in (out / "log.jsonl").read_text().splitlines()
    ]


def test_resume_after_an_interruption_continues_the_same_loss_curve(tmp_path):
    random_corpus(tmp_path / "data", files=2, per_file=12, row_group_size=3, tpi=8)
    cfg = TrainConfig(
        data=str(tmp_path / "data"),
        out=str(tmp_path / "whole"),
        steps=8,
        batch_size=2,
        context=32,
        lr=1e-3,
        eval_every=4,
        save_every=4,
        log_every=1,
        val_fraction=0.2,
    )
    whole = train(cfg)

    def stop_after_first_save(message):
        if message.startswith("saved") and message.endswith("step-00000004.pt"):
            raise Interrupted

    broken = cfg.with_(out=str(tmp_path / "broken"))
    with pytest.raises(Interrupted):
        train(broken, log=stop_after_first_save)
    assert checkpoint.latest(broken.out).endswith("step-00000004.pt")
    messages = []
    resumed = train(broken, log=messages.append)
    assert any(m.startswith("resuming from") for m in messages)
    assert records(tmp_path / "broken") == records(tmp_path / "whole")
    assert [r["step"] for r in records(tmp_path / "whole") if r["kind"] == "train"] == list(range(1, 9))
    assert resumed.val_loss == whole.val_loss and resumed.train_loss == whole.train_loss
    assert (tmp_path / "broken" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    done = train(broken)  # nothing left to train: reports the checkpoint's validation loss, logs nothing new
    assert done.step == 8 and done.val_loss == whole.val_loss
    assert records(tmp_path / "broken") == records(tmp_path / "whole")


def test_loss_png_is_rewritten_at_every_evaluation_not_only_at_the_end(tmp_path, monkeypatch):
    random_corpus(tmp_path / "data", files=1, per_file=12, tpi=8)
    cfg = TrainConfig(
        data=str(tmp_path / "data"),
        out=str(tmp_path / "run"),
        steps=4,
        batch_size=2,
        context=16,
        eval_every=2,
        save_every=4,
        log_every=1,
        val_fraction=0.2,
    )
    png = tmp_path / "run" / "loss.png"

    def stop_at_the_first_step(message):
        if message.startswith("step 1/"):
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the evaluation at step 0 is on the chart
            raise Interrupted

    with pytest.raises(Interrupted):
        train(cfg, log=stop_at_the_first_step)

    charts = []
    real_plot = curves.plot

    def spy(records, uri, title=""):
        charts.append(max(r["step"] for r in records))
        real_plot(records, uri, title)

    monkeypatch.setattr(curves, "plot", spy)
    train(cfg.with_(out=str(tmp_path / "again")))
    assert charts == [0, 2, 4]  # after each evaluation; the one at the end is not drawn twice
    train(cfg.with_(out=str(tmp_path / "again")))  # nothing left to train: nothing new to draw, drawn once
    assert charts == [0, 2, 4, 4]


def test_no_resume_refuses_a_folder_with_checkpoints(tmp_path):
    random_corpus(tmp_path / "data", files=1, per_file=8, tpi=8)
    cfg = TrainConfig(data=str(tmp_path / "data"), out=str(tmp_path / "run"), steps=1, batch_size=1, context=16)
    train(cfg)
    with pytest.raises(checkpoint.TrainingCheckpointError, match="--no-resume"):
        train(cfg.with_(resume=False))
    with pytest.raises(checkpoint.TrainingCheckpointError, match="same --model/--context"):
        train(cfg.with_(context=32))
    with pytest.raises(checkpoint.TrainingCheckpointError, match="tie-embeddings"):
        train(cfg.with_(tie_embeddings=True, steps=2))
    with pytest.raises(checkpoint.TrainingCheckpointError, match="rope-theta"):
        train(cfg.with_(rope_theta=500.0, steps=2))


def test_a_checkpoint_saved_before_tie_embeddings_existed_resumes(tmp_path):
    random_corpus(tmp_path / "data", files=1, per_file=8, tpi=8)
    cfg = TrainConfig(data=str(tmp_path / "data"), out=str(tmp_path / "run"), steps=1, batch_size=1, context=16)
    saved = train(cfg).checkpoint
    payload = checkpoint.load(saved)
    del payload["model_config"]["tie_embeddings"]  # what an older checkpoint holds
    payload.pop("uri")
    storage.write_bytes(saved, _torch_bytes(payload))
    assert train(cfg.with_(steps=2)).step == 2


def _torch_bytes(payload) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def test_bf16_on_cpu_trains_close_to_float32_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu, "cpu_has_bf16_kernels", lambda: False)  # as on an AVX2-only CPU
    random_corpus(tmp_path / "data", files=1, per_file=12, tpi=8)
    cfg = TrainConfig(
        data=str(tmp_path / "data"), out=str(tmp_path / "fp32"), steps=3, batch_size=2, context=32, log_every=1
    )
    messages, fp32_messages = [], []
    fp32 = train(cfg, log=fp32_messages.append)
    bf16 = train(cfg.with_(out=str(tmp_path / "bf16"), precision="bf16"), log=messages.append)
    assert any(m.startswith("model tiny") and m.endswith("bf16 autocast") for m in messages)
    assert sum("emulated" in m for m in messages) == 1 and not any("emulated" in m for m in fp32_messages)
    assert bf16.train_loss != fp32.train_loss  # the products did run in bfloat16
    assert bf16.train_loss == pytest.approx(fp32.train_loss, abs=0.05)
    for source, loss in bf16.val_loss.items():
        assert loss == pytest.approx(fp32.val_loss[source], abs=0.05)


def test_training_on_structured_codes_beats_the_unigram_baseline(tmp_path):
    structured_corpus(tmp_path / "data", sentences=200, codebook=64, tpi=16, images=4)
    cfg = TrainConfig(
        data=str(tmp_path / "data"),
        out=str(tmp_path / "run"),
        steps=120,
        batch_size=4,
        context=128,
        lr=3e-3,
        min_lr=3e-4,
        eval_every=60,
        save_every=120,
        val_fraction=0.1,
    )
    lines = []
    result = train(cfg, log=lines.append)
    assert set(result.val_loss) == {"still", "still2"}
    pooled = [line for line in lines if line.startswith("val step 120 [all 2 sources")]
    assert len(pooled) == 1 and "(below: both)" in pooled[0], lines
    for source, loss in result.val_loss.items():
        unigram = result.unigram_loss[source]
        assert unigram > 0.8 * math.log(64)
        assert loss < 0.5 * unigram, (source, loss, unigram)
        assert result.unseen_loss[source] == pytest.approx(loss)  # random codes: no held-out image occurs in training
    val = [r for r in records(tmp_path / "run") if r["kind"] == "val"]
    assert [r["step"] for r in val] == [0, 0, 60, 60, 120, 120]
    assert val[0]["loss"] > val[-1]["loss"]


def test_data_and_output_on_gcs(tmp_path, gcs):
    random_corpus(tmp_path / "data", files=1, per_file=10, row_group_size=5, tpi=8)
    for path in sorted((tmp_path / "data").rglob("*.parquet")):
        storage.write_bytes(f"{gcs}/job/{path.relative_to(tmp_path / 'data')}", path.read_bytes())
    cfg = TrainConfig(
        data=f"{gcs}/job", out=f"{gcs}/run", steps=2, batch_size=2, context=32, keep_checkpoints=1, val_fraction=0.2
    )
    first = train(cfg)
    assert first.checkpoint == f"{gcs}/run/checkpoints/step-00000002.pt"
    assert [u.rsplit("/", 1)[1] for u in storage.list_files(f"{gcs}/run")] == [
        "latest.json",
        "step-00000002.pt",
        "log.jsonl",
        "loss.png",
    ]
    again = train(cfg.with_(steps=3))
    assert again.step == 3 and checkpoint.latest(cfg.out).endswith("step-00000003.pt")


def recording_loader(consumed):
    class Recording(StreamLoader):
        """The trainer's loader, keeping every batch it hands out."""

        def __iter__(self):
            for batch in super().__iter__():
                consumed.append(batch.tolist())
                yield batch

    return Recording


def test_training_on_a_mix_reads_it_in_order_and_resumes_at_the_next_row(small_mix, tmp_path, monkeypatch):
    consumed = {"whole": [], "broken": []}
    cfg = TrainConfig(
        data=str(small_mix),
        out=str(tmp_path / "whole"),
        steps=8,
        batch_size=2,
        context=12,
        lr=1e-3,
        eval_every=4,
        save_every=4,
        log_every=1,
    )
    monkeypatch.setattr(loop, "StreamLoader", recording_loader(consumed["whole"]))
    whole = train(cfg)
    packer, rows = Packer(Vocab(64), 12), []  # the mix's rows in its order, packed as the stream packs them
    for _shard, _row, _sid, codes in mix_rows(small_mix) * 2:
        packer.add(codes)
        rows.extend(r.tolist() for r in packer.rows())
    assert [r for batch in consumed["whole"] for r in batch] == rows[:16]
    assert (
        set(whole.val_loss)
        == {s for s in pq.read_table(small_mix / "validation", columns=["source"]).column("source").to_pylist()}
        == {"alpha", "beta"}
    )

    monkeypatch.setattr(loop, "StreamLoader", recording_loader(consumed["broken"]))
    broken = cfg.with_(out=str(tmp_path / "broken"))

    def stop_after_first_save(message):
        if message.startswith("saved") and message.endswith("step-00000004.pt"):
            raise Interrupted

    with pytest.raises(Interrupted):
        train(broken, log=stop_after_first_save)
    position = checkpoint.load(checkpoint.latest(broken.out))["data"][0]["position"]
    assert len(consumed["broken"]) == 4 and position["epoch"] == 0
    resumed = train(broken)
    assert consumed["broken"] == consumed["whole"]  # 4 + 4 batches: the uninterrupted run's, row for row
    assert records(tmp_path / "broken") == records(tmp_path / "whole")  # and its losses, bit for bit on CPU
    assert resumed.val_loss == whole.val_loss and resumed.train_loss == whole.train_loss
    # the position names the next row (row `row` of shard `shard`) and the packing carry: from there the mix's
    # rows pack into exactly the rows the resumed run trained on
    mix = mix_rows(small_mix)
    k = sum(1 for s, r, _sid, _codes in mix if (s, r) < (position["shard"], position["row"]))
    assert 0 < k < len(mix)
    packer, after = Packer(Vocab(64), 12, position["buffer"]), []
    for _shard, _row, _sid, codes in mix[k:]:
        packer.add(codes)
        after.extend(r.tolist() for r in packer.rows())
    assert after[:8] == [r for batch in consumed["whole"][4:] for r in batch]


@pytest.mark.slow
def test_a_mix_checkpoint_of_two_ranks_resumes_on_one_at_the_next_row(small_mix, tmp_path):
    """Two CPU ranks (torchrun, gloo) train 4 steps; one rank resumes to 6: its data position is where one rank
    alone stands after 8 and then 10 steps of the same batch size (2 ranks x 4 steps = 8 global batches)."""
    flags = [
        "--steps",
        "4",
        "--batch-size",
        "2",
        "--context",
        "12",
        "--save-every",
        "4",
        "--eval-every",
        "100",
        "--device",
        "cpu",
    ]
    lvm_data = str(Path(sys.executable).with_name("lvm-data"))
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            lvm_data,
            "train",
            str(small_mix),
            "--out",
            str(tmp_path / "two"),
            *flags,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    saved = checkpoint.load(checkpoint.latest(str(tmp_path / "two")))["data"]
    assert len(saved) == 2 and saved[0]["position"] == saved[1]["position"]
    cfg = TrainConfig(
        data=str(small_mix), out=str(tmp_path / "one"), steps=8, batch_size=2, context=12, save_every=4, eval_every=100
    )
    train(cfg)
    assert saved[0]["position"] == checkpoint.load(checkpoint.latest(cfg.out))["data"][0]["position"]
    train(cfg.with_(out=str(tmp_path / "two"), steps=6))  # one rank now: from the two ranks' position
    train(cfg.with_(steps=10))
    resumed = checkpoint.load(checkpoint.latest(str(tmp_path / "two")))["data"]
    assert resumed[0]["position"] == checkpoint.load(checkpoint.latest(cfg.out))["data"][0]["position"]
