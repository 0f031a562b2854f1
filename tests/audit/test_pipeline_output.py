"""The audit against an output the pipeline wrote (`lvm-data run`), clean and with a planted fault."""

import json
import shutil

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from lvm_data.audit import AuditConfig, Kind, run_audit
from lvm_data.cli import main
from lvm_data.media.samples import photos
from lvm_data.shards import layout
from lvm_data.tokenizer.model import VQGAN, VQGANConfig

# 16 x 16 input, 8 x 8 = 64 tokens per image, 16 codes: random weights, fast on CPU
MICRO = VQGANConfig(
    resolution=16,
    hidden_channels=32,
    channel_mult=(1, 2),
    num_res_blocks=1,
    z_channels=4,
    quantized_embed_dim=4,
    num_embeddings=16,
)


def micro_checkpoint(folder):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"_class_name": "VQGANModel", **MICRO.to_dict()}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        save_file(VQGAN(MICRO).state_dict(), str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def pipeline_output(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    micro_checkpoint(root / "micro")
    (root / "images").mkdir()
    for path in photos("heldout"):
        shutil.copy(path, root / "images" / path.name)
    (root / "images" / "broken.jpg").write_bytes(b"not an image at all")
    (root / "job.yaml").write_text(
        f"name: audit-test\noutput: {root / 'out'}\ntokenizer: {root / 'micro'}\ndevice: cpu\nshard_size: 2\n"
        f"sources:\n  - name: photos\n    input: {{format: images, paths: {root / 'images'}}}\n"
    )
    result = CliRunner().invoke(main, ["run", str(root / "job.yaml")])
    assert result.exit_code == 0, result.output
    return root / "out"


@pytest.mark.slow
def test_a_pipeline_output_audits_clean_and_matches_its_manifest(pipeline_output):
    result = run_audit([str(pipeline_output)], AuditConfig(deep=True))
    assert result.ok, result.findings.to_dict()
    manifest = json.loads((pipeline_output / layout.MANIFEST).read_text())
    totals = manifest["totals"]
    assert (
        (result.total.sentences, result.total.images, result.total.tokens)
        == (totals["sentences"], totals["images"], totals["tokens"])
        == (3, 3, 3 * 64)
    )
    (ledger, _) = result.ledger
    assert (ledger.inputs, ledger.ok, ledger.failed, ledger.reasons.get("ok")) == (4, 3, 1, 3)
    assert [(t.fingerprint, t.codebook_size, t.tokens_per_image) for t in result.tokenizers] == [
        (manifest["tokenizer"]["fingerprint"], 16, 64)
    ]
    assert result.codebook.tokens == 3 * 64 and result.codebook.out_of_range_tokens == 0


@pytest.mark.slow
def test_a_fault_planted_in_a_pipeline_output_is_found(pipeline_output, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(pipeline_output, copy)
    ledger = sorted((copy / "ledger").rglob("*.parquet"))[0]
    ledger.unlink()
    result = run_audit([str(copy)])
    assert {k.value for k in result.findings.kinds()} == {"missing_file", "orphan_sentence"}
    (missing,) = result.findings.shown[Kind.MISSING_FILE]
    assert missing.where == str(ledger) and "manifest.json" in missing.detail
