import pytest

from lvm_data.tokenizer import CheckpointError, load
from lvm_data.tokenizer.locations import cache_root, resolve
from lvm_data.tokenizer.remote import select_files

from .layouts import MICRO, write_muse


def test_local_paths_are_used_as_they_are(tmp_path, micro_weights):
    folder = write_muse(tmp_path / "ckpt", MICRO, micro_weights)
    assert resolve(str(folder)) == folder
    assert load(str(folder), device="cpu").format == "open-muse"


def test_cache_root_argument_then_environment_then_home(tmp_path, monkeypatch):
    monkeypatch.delenv("LVM_DATA_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "lvm-data"
    monkeypatch.setenv("LVM_DATA_CACHE", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"


def test_unknown_schemes_and_builtins_are_explained():
    with pytest.raises(CheckpointError, match="s3://b/x: unsupported location scheme; use a local path, gs://"):
        resolve("s3://b/x")
    with pytest.raises(CheckpointError, match="builtin:nope: no such builtin tokenizer; available:"):
        resolve("builtin:nope")


def test_select_files_keeps_what_the_loaders_read():
    names = [
        "config.json",
        "model.safetensors",
        "pytorch_model.bin",
        "README.md",
        "samples/0.png",
        "vqvae/config.json",
        "checkpoints/last.ckpt",
        "configs/run-project.yaml",
        "configs/run-lightning.yaml",
        "images/train/x.jpg",
        "diffusion_pytorch_model.fp16.safetensors",
        "diffusion_pytorch_model.safetensors",
    ]
    assert select_files(names) == [
        "checkpoints/last.ckpt",
        "config.json",
        "configs/run-lightning.yaml",
        "configs/run-project.yaml",
        "diffusion_pytorch_model.safetensors",
        "model.safetensors",
    ]
    assert select_files(["config.json", "pytorch_model.bin"]) == ["config.json", "pytorch_model.bin"]
    assert select_files(["model.fp16.safetensors"]) == ["model.fp16.safetensors"]  # no full-precision file beside


def test_select_files_refuses_several_ckpts():
    with pytest.raises(CheckpointError, match=r"several .ckpt files \(checkpoints/epoch=1.ckpt, checkpoints/last"):
        select_files(["checkpoints/epoch=1.ckpt", "checkpoints/last.ckpt", "configs/a.yaml"])
