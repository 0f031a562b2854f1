import collections
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from lvm_data.tokenizer.weights import CheckpointError, read_state_dict


class RunsCode:
    """Pickles as a call of os.system: loading it with plain pickle would create `marker`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def tensors():
    return collections.OrderedDict(a=torch.randn(3, 4), b=torch.arange(5.0), c=torch.ones(2, dtype=torch.bfloat16))


def same(got, expected):
    assert list(got) == list(expected)
    assert all(torch.equal(got[k], expected[k]) and got[k].dtype == expected[k].dtype for k in expected)


def test_reads_safetensors_zip_and_legacy_torch_files(tmp_path, tensors):
    save_file(dict(tensors), str(tmp_path / "model.safetensors"))
    torch.save(tensors, tmp_path / "zip.bin")
    torch.save(tensors, tmp_path / "legacy.bin", _use_new_zipfile_serialization=False)
    torch.save({"state_dict": tensors, "epoch": 1}, tmp_path / "nested.bin")
    for name in ("model.safetensors", "zip.bin", "legacy.bin", "nested.bin"):
        same(read_state_dict(tmp_path / name), tensors)


def test_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path, tensors):
    marker = tmp_path / "code-ran"
    path = tmp_path / "pytorch_model.bin"
    torch.save({**tensors, "evil": RunsCode(marker)}, path)
    torch.load(path, weights_only=False)  # control: the payload is live
    assert marker.exists()
    marker.unlink()
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin: refused.*references posix.system.*nothing"):
        read_state_dict(path)
    assert not marker.exists()


def test_legacy_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "old.bin"
    torch.save({"a": RunsCode(marker)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="old.bin: refused"):
        read_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["model.safetensors", "pytorch_model.bin"])
def test_truncated_files_say_download_again(tmp_path, tensors, name):
    path = tmp_path / name
    if name.endswith(".safetensors"):
        save_file(dict(tensors), str(path))
    else:
        torch.save(tensors, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=rf"{name}: .*(truncated|download it again)"):
        read_state_dict(path)


def test_empty_missing_and_foreign_files(tmp_path):
    (tmp_path / "empty.bin").write_bytes(b"")
    (tmp_path / "notes.bin").write_bytes(b"hello world, not weights")
    with pytest.raises(CheckpointError, match="empty.bin: weights file is empty"):
        read_state_dict(tmp_path / "empty.bin")
    with pytest.raises(CheckpointError, match="absent.bin: weights file not found"):
        read_state_dict(tmp_path / "absent.bin")
    with pytest.raises(CheckpointError, match="notes.bin: not a torch checkpoint"):
        read_state_dict(tmp_path / "notes.bin")


def test_a_file_without_a_mapping_of_tensors_is_refused(tmp_path):
    torch.save([torch.ones(1)], tmp_path / "list.bin")
    torch.save({"a": torch.ones(1), "step": 3}, tmp_path / "mixed.bin")
    for name in ("list.bin", "mixed.bin"):
        with pytest.raises(CheckpointError, match=f"{name}: expected a mapping of parameter names to tensors"):
            read_state_dict(tmp_path / name)


def test_plain_pickle_is_not_a_checkpoint(tmp_path):
    (tmp_path / "x.bin").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    with pytest.raises(CheckpointError, match="x.bin: not a torch checkpoint"):
        read_state_dict(tmp_path / "x.bin")
