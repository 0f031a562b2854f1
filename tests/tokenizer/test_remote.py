import json
import shutil

import numpy as np
import pytest

from lvm_data import storage
from lvm_data.tokenizer import CheckpointError, load, remote
from lvm_data.tokenizer.remote import parse_hf

from .fake_hub import FakeHub
from .layouts import MICRO, TINY, random_state, write_diffusers, write_muse


def upload(folder, prefix):
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        storage.write_bytes(f"{prefix}/{path.relative_to(folder).as_posix()}", path.read_bytes())


@pytest.fixture
def copies(monkeypatch):
    """Count the files copied out of GCS."""
    seen = []
    copy = remote.copy_gcs
    monkeypatch.setattr(remote, "copy_gcs", lambda uri, dest, size: seen.append(uri) or copy(uri, dest, size))
    return seen


def test_gs_checkpoint_is_downloaded_once_and_reused(gcs, tmp_path, micro_weights, micro_images, copies):
    local = write_muse(tmp_path / "src", MICRO, micro_weights, weights="bin")
    (local / "README.md").write_text("not needed")
    upload(local, f"{gcs}/reuse/vqgan")
    first = load(f"{gcs}/reuse/vqgan", device="cpu", cache_dir=tmp_path / "cache")
    assert sorted(u.rsplit("/", 1)[1] for u in copies) == ["config.json", "pytorch_model.bin"]
    second = load(f"{gcs}/reuse/vqgan/", device="cpu", cache_dir=tmp_path / "cache")
    assert len(copies) == 2  # nothing copied the second time
    assert first.fingerprint == second.fingerprint == load(str(local), device="cpu").fingerprint
    np.testing.assert_array_equal(first.encode(micro_images), second.encode(micro_images))
    assert first.files[0].is_relative_to(tmp_path / "cache" / "tokenizers" / "gcs")


def test_gs_checkpoint_that_changed_is_downloaded_again(gcs, tmp_path, micro_weights, copies):
    prefix = f"{gcs}/changed/vqgan"
    upload(write_muse(tmp_path / "v1", MICRO, micro_weights), prefix)
    before = load(prefix, device="cpu", cache_dir=tmp_path / "cache")
    upload(write_muse(tmp_path / "v2", MICRO, random_state(MICRO, seed=9)), prefix)
    after = load(prefix, device="cpu", cache_dir=tmp_path / "cache")
    assert before.fingerprint != after.fingerprint
    assert len(copies) == 4


def test_interrupted_download_never_looks_complete(gcs, tmp_path, micro_weights, monkeypatch):
    prefix = f"{gcs}/partial/vqgan"
    upload(write_muse(tmp_path / "src", MICRO, micro_weights), prefix)
    copy = remote.copy_gcs

    def fail_on_weights(uri, dest, size):
        if uri.endswith(".safetensors"):
            dest.write_bytes(b"half a file")
            raise CheckpointError(f"{uri}: download failed (connection reset); try again")
        copy(uri, dest, size)

    monkeypatch.setattr(remote, "copy_gcs", fail_on_weights)
    with pytest.raises(CheckpointError, match="connection reset"):
        load(prefix, device="cpu", cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache" / "tokenizers" / "gcs").iterdir()) == []  # no folder, no leftovers
    monkeypatch.setattr(remote, "copy_gcs", copy)
    assert load(prefix, device="cpu", cache_dir=tmp_path / "cache").format == "open-muse"


def test_environment_variable_moves_the_cache(gcs, tmp_path, micro_weights, monkeypatch):
    prefix = f"{gcs}/env/vqgan"
    upload(write_muse(tmp_path / "src", MICRO, micro_weights), prefix)
    monkeypatch.setenv("LVM_DATA_CACHE", str(tmp_path / "env-cache"))
    load(prefix, device="cpu")
    record = next((tmp_path / "env-cache" / "tokenizers" / "gcs").glob("*/.lvm-data-complete.json"))
    assert sorted(json.loads(record.read_text())["files"]) == ["config.json", "model.safetensors"]


def test_gs_locations_that_hold_no_checkpoint(gcs, tmp_path, micro_weights):
    with pytest.raises(CheckpointError, match=rf"{gcs}/nothing: nothing under this prefix"):
        load(f"{gcs}/nothing", cache_dir=tmp_path)
    storage.write_bytes(f"{gcs}/notes/readme.md", b"hello")
    with pytest.raises(CheckpointError, match=r"no checkpoint files .* found readme.md"):
        load(f"{gcs}/notes", cache_dir=tmp_path)
    with pytest.raises(CheckpointError, match="a single file; point at the folder"):
        load(f"{gcs}/notes/readme.md", cache_dir=tmp_path)


# ---- hf:// ----


@pytest.fixture
def hub(tmp_path, tiny_weights, micro_weights):
    root = tmp_path / "hub"
    write_diffusers(root / "org" / "amused" / "vqvae", TINY, tiny_weights)
    (root / "org" / "amused" / "model_index.json").write_text('{"_class_name": "AmusedPipeline"}')
    (root / "org" / "amused" / "transformer").mkdir()
    (root / "org" / "amused" / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"0" * 1000)
    muse = write_muse(root / "org" / "vqgan", MICRO, micro_weights)
    shutil.copy(muse / "model.safetensors", muse / "pytorch_model.bin")  # both copies, as real repos have
    server = FakeHub(root)
    yield server
    server.stop()


def test_hf_subfolder_downloads_only_the_checkpoint_files(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    tok = load("hf://org/amused@main/vqvae", device="cpu", cache_dir=tmp_path / "cache")
    assert tok.format == "diffusers" and tok.input_range == (0.0, 1.0)
    assert sorted(p.rsplit("/", 1)[1] for p in hub.downloads()) == [
        "config.json",
        "diffusion_pytorch_model.safetensors",
    ]
    assert tok.files[0].is_relative_to(tmp_path / "cache" / "tokenizers" / "hf")


def test_hf_prefers_safetensors_and_works_offline_afterwards(hub, tmp_path, monkeypatch, micro_images):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    online = load("hf://org/vqgan", device="cpu", cache_dir=tmp_path / "cache")
    assert not any(p.endswith("pytorch_model.bin") for p in hub.downloads())
    hub.stop()
    offline = load("hf://org/vqgan", device="cpu", cache_dir=tmp_path / "cache")
    assert offline.fingerprint == online.fingerprint
    np.testing.assert_array_equal(offline.encode(micro_images), online.encode(micro_images))


def test_hf_offline_without_a_cached_copy_says_what_to_do(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    hub.stop()
    with pytest.raises(
        CheckpointError,
        match=r"hf://org/vqgan@v1: cannot reach the Hugging Face Hub .* "
        r"`hf download org/vqgan --revision v1 --local-dir DIR`",
    ):
        load("hf://org/vqgan@v1", cache_dir=tmp_path / "cache")


def test_hf_failed_download_leaves_nothing_that_loads(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    hub.missing.add("org/amused/vqvae/diffusion_pytorch_model.safetensors")
    with pytest.raises(CheckpointError, match="hf://org/amused/vqvae: the Hub refused the download"):
        load("hf://org/amused/vqvae", cache_dir=tmp_path / "cache")
    hub.stop()
    with pytest.raises(CheckpointError, match="cannot reach the Hugging Face Hub .* no earlier download is cached"):
        load("hf://org/amused/vqvae", cache_dir=tmp_path / "cache")


def test_hf_unknown_repository(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    with pytest.raises(CheckpointError, match="hf://org/missing: repository org/missing not found or not accessible"):
        load("hf://org/missing", cache_dir=tmp_path / "cache")


def test_parse_hf():
    assert parse_hf("hf://amused/amused-256/vqvae") == remote.HubRef("amused/amused-256", None, "vqvae")
    assert parse_hf("hf://org/name@abc123") == remote.HubRef("org/name", "abc123", "")
    assert parse_hf("hf://org/name@main/a/b/") == remote.HubRef("org/name", "main", "a/b")
    with pytest.raises(CheckpointError, match=r"expected hf://org/name\[@revision\]\[/subfolder\]"):
        parse_hf("hf://justone")
