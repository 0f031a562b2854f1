import pytest
import torch

from lvm_data.train import checkpoint


def test_saves_point_latest_at_the_newest_and_keep_the_last_ones(tmp_path):
    out = str(tmp_path)
    assert checkpoint.latest(out) is None
    for step in (5, 10, 15):
        checkpoint.save(out, step, {"weights": torch.full((2,), float(step))}, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "latest.json",
        "step-00000010.pt",
        "step-00000015.pt",
    ]
    assert checkpoint.resolve(out).endswith("step-00000015.pt")
    payload = checkpoint.load(out)
    assert payload["step"] == 15 and torch.equal(payload["weights"], torch.full((2,), 15.0))
    assert checkpoint.load(str(tmp_path / "checkpoints" / "step-00000010.pt"))["step"] == 10


def test_missing_foreign_and_broken_checkpoints_are_named(tmp_path):
    with pytest.raises(checkpoint.TrainingCheckpointError, match="no checkpoint here"):
        checkpoint.resolve(str(tmp_path))
    with pytest.raises(checkpoint.TrainingCheckpointError, match="no such checkpoint file"):
        checkpoint.resolve(str(tmp_path / "step-1.pt"))
    foreign = tmp_path / "other.pt"
    torch.save({"state": 1}, foreign)
    with pytest.raises(checkpoint.TrainingCheckpointError, match="not an lvm-data training checkpoint"):
        checkpoint.load(str(foreign))
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a zip")
    with pytest.raises(checkpoint.TrainingCheckpointError, match="broken.pt: unreadable checkpoint"):
        checkpoint.load(str(broken))
