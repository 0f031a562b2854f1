import collections
import pickle
import sys
import warnings
import zipfile

import pytest
import torch

from lvm_data.tokenizer.lightning import read_lightning_state_dict
from lvm_data.tokenizer.weights import CheckpointError

from .layouts import write_lightning_ckpt
from .test_weights import RunsCode


@pytest.fixture
def weights():
    state = collections.OrderedDict(w=torch.randn(3, 4), b=torch.arange(4.0), half=torch.ones(2, dtype=torch.float16))
    state["row"] = state["w"][1]  # a view: shares the storage of w, with an offset
    state["col"] = state["w"][:, 2]  # strided view
    return state


def test_reads_weights_past_lightning_metadata_without_importing_it(tmp_path, weights, monkeypatch):
    path = write_lightning_ckpt(tmp_path / "last.ckpt", weights, monkeypatch)
    with pytest.raises(pickle.UnpicklingError):  # torch's own safe loader refuses it because of the metadata
        torch.load(path, weights_only=True)
    got = read_lightning_state_dict(path)
    for name, tensor in weights.items():
        assert torch.equal(got[name], tensor) and got[name].dtype == tensor.dtype
    assert got["loss.discriminator.main.1.num_batches_tracked"].item() == 7
    assert not any(name.startswith("pytorch_lightning") for name in sys.modules)


def test_keep_filters_names_before_any_tensor_is_read(tmp_path, weights, monkeypatch):
    path = write_lightning_ckpt(tmp_path / "last.ckpt", weights, monkeypatch)
    got = read_lightning_state_dict(path, keep=lambda name: not name.startswith("loss."))
    assert sorted(got) == sorted(weights)


@pytest.mark.parametrize("where", ["callbacks", "state_dict"])
def test_code_in_a_checkpoint_is_refused_and_never_runs(tmp_path, weights, monkeypatch, where):
    marker = tmp_path / "code-ran"
    extra = {"callbacks": {"evil": RunsCode(marker)}} if where == "callbacks" else {}
    if where == "state_dict":
        weights = {**weights, "evil": RunsCode(marker)}
    path = write_lightning_ckpt(tmp_path / "evil.ckpt", weights, monkeypatch, extra)
    with pytest.raises(CheckpointError, match=r"evil.ckpt: refused.*posix.system.*nothing from it was run"):
        read_lightning_state_dict(path)
    assert not marker.exists()


def test_other_dangerous_names_are_refused(tmp_path):
    class Eval:
        def __reduce__(self):
            return (eval, ("1 + 1",))

    class GetAttr:
        def __reduce__(self):
            return (getattr, ("text", "upper"))

    for payload, name in ((Eval(), "builtins.eval"), (GetAttr(), "builtins.getattr")):
        torch.save({"state_dict": {"w": torch.ones(1)}, "x": payload}, tmp_path / "x.ckpt")
        with pytest.raises(CheckpointError, match=rf"refused.*{name}"):
            read_lightning_state_dict(tmp_path / "x.ckpt")


def test_metadata_object_in_place_of_a_tensor_is_refused(tmp_path, monkeypatch):
    from .layouts import lightning_classes

    modules, _checkpoint, attribute_dict = lightning_classes()
    with monkeypatch.context() as patch:
        for name, module in modules.items():
            patch.setitem(sys.modules, name, module)
        torch.save({"state_dict": {"w": torch.ones(1), "h": attribute_dict(a=1)}}, tmp_path / "odd.ckpt")
    with pytest.raises(CheckpointError, match=r"odd.ckpt: state_dict entry 'h' is <pytorch_lightning.*not a tensor"):
        read_lightning_state_dict(tmp_path / "odd.ckpt")


def test_truncated_corrupt_and_foreign_files(tmp_path, weights, monkeypatch):
    path = write_lightning_ckpt(tmp_path / "last.ckpt", weights, monkeypatch)
    data = path.read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.ckpt: truncated zip archive"):
        read_lightning_state_dict(tmp_path / "cut.ckpt")
    torch.save(weights, tmp_path / "legacy.ckpt", _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy.ckpt: not a torch zip checkpoint"):
        read_lightning_state_dict(tmp_path / "legacy.ckpt")
    with zipfile.ZipFile(tmp_path / "other.ckpt", "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(CheckpointError, match="other.ckpt: a zip file but not a torch.save archive"):
        read_lightning_state_dict(tmp_path / "other.ckpt")


def test_a_storage_with_missing_bytes_is_reported(tmp_path, weights, monkeypatch):
    path = write_lightning_ckpt(tmp_path / "last.ckpt", weights, monkeypatch)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "short.ckpt", "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data[:-4] if item.filename.endswith("/data/0") else data)
    with pytest.raises(CheckpointError, match=r"short.ckpt: tensor data 0 has \d+ bytes, expected"):
        read_lightning_state_dict(tmp_path / "short.ckpt")


def test_no_state_dict_and_torchscript_archives(tmp_path):
    torch.save({"epoch": 1, "global_step": 2}, tmp_path / "meta.ckpt")
    with pytest.raises(CheckpointError, match=r"meta.ckpt: no 'state_dict' mapping.*epoch, global_step"):
        read_lightning_state_dict(tmp_path / "meta.ckpt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, files made with it remain
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "script.ckpt")
    with pytest.raises(CheckpointError, match="script.ckpt: a TorchScript archive"):
        read_lightning_state_dict(tmp_path / "script.ckpt")


def test_a_bare_state_dict_saved_as_ckpt_is_read(tmp_path, weights):
    torch.save(weights, tmp_path / "bare.ckpt")
    assert sorted(read_lightning_state_dict(tmp_path / "bare.ckpt")) == sorted(weights)


def test_a_forged_tensor_record_is_malformed_not_a_crash(tmp_path):
    class Forged:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, ("not a storage", 0, (1,), (1,), False, collections.OrderedDict()))

    torch.save({"state_dict": {"w": Forged()}}, tmp_path / "forged.ckpt")
    with pytest.raises(CheckpointError, match="forged.ckpt: malformed checkpoint .*not one of the archive's storages"):
        read_lightning_state_dict(tmp_path / "forged.ckpt")
