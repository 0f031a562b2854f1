from pathlib import Path

from lvm_data.items import ERROR_META
from lvm_data.job.config import parse_job_text, with_resolved
from lvm_data.job.steps import make_runtime
from lvm_data.samplecorpus.job import SOURCE_TEMPLATES, sample_job, tokenizer_location
from lvm_data.sentences.registry import TEMPLATES

ITEMS = {
    "photos": 18,
    "faces": 32,
    "videos": 4,
    "segmentation": 18,
    "edges": 18,
    "depth": 1,
    "multi-annotation": 18,
    "colorization": 11,
    "inpainting": 18,
    "sequences": 1,
    "stereo-views": 1,
}


def test_the_job_names_every_template_and_writes_beside_the_inputs(tmp_path):
    job = parse_job_text(sample_job(tmp_path))
    assert {s.name: s.template for s in job.sources} == SOURCE_TEMPLATES
    assert set(SOURCE_TEMPLATES.values()) == set(TEMPLATES)  # every data type
    assert job.output == str(tmp_path / "corpus") and job.tokenizer == "builtin:tiny"
    assert sample_job(tmp_path) == sample_job(tmp_path)
    assert "#" in sample_job(tmp_path).splitlines()[0]  # commented for people


def test_odd_folder_names_stay_one_path(tmp_path):
    out = tmp_path / "my sample #1: {x}, 'y'"
    job = parse_job_text(sample_job(out))
    assert job.output == str(out / "corpus")
    assert job.source("photos").input["paths"] == str(out / "media" / "photos")


def test_local_tokenizers_become_absolute_and_other_locations_stay(tmp_path, monkeypatch):
    (tmp_path / "ckpt").mkdir()
    monkeypatch.chdir(tmp_path)
    assert tokenizer_location("ckpt") == str(tmp_path / "ckpt")
    assert parse_job_text(sample_job(tmp_path / "out", "ckpt")).tokenizer == str(tmp_path / "ckpt")
    for uri in ("builtin:tiny", "hf://amused/amused-256/vqvae", "gs://b/ckpt", "missing-folder"):
        assert tokenizer_location(uri) == uri


def test_every_source_reads_all_its_items_over_the_assembled_media(assembled):
    job = with_resolved(parse_job_text(sample_job(Path(assembled.root).parent)), 32, 16)  # shard_size auto resolved
    for src in job.sources:
        rt = make_runtime(job, src)
        refs = [ref for unit in rt.source.plan() for ref in rt.source.read(unit)]
        assert len(refs) == ITEMS[src.name], src.name
        assert not [ref.key for ref in refs if ERROR_META in ref.meta], src.name  # nothing unpaired
    views = make_runtime(job, job.source("stereo-views")).source
    (ref,) = [r for unit in views.plan() for r in views.read(unit)]
    assert [v.rsplit("/", 2)[-2] for v in ref.parts["views"].views] == ["left", "right"]
