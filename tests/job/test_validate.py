"""Job validation before any work (issue 15): the output's scheme and place, templates their input can feed."""

import importlib.util

import pytest
from click.testing import CliRunner

from lvm_data.cli import main
from lvm_data.job.config import JobConfigError, parse_job
from lvm_data.job.validate import FEEDS, reach
from lvm_data.sources.registry import SOURCES
from lvm_data.testing import job_text


def job(output, *sources) -> dict:
    return {"name": "j", "output": str(output), "sources": list(sources) or [images("a", "in")]}


def images(name, paths, template="single") -> dict:
    return {"name": name, "input": {"format": "images", "paths": paths}, "template": template}


def problems(raw) -> str:
    with pytest.raises(JobConfigError) as err:
        parse_job(raw, "job.yaml")
    return str(err.value)


@pytest.mark.parametrize("output", ["in", "in/", "in/out", "in/deep/er/out"])
def test_an_output_in_an_input_folder_is_refused(tmp_path, monkeypatch, output):
    monkeypatch.chdir(tmp_path)
    said = problems(job(output))
    assert f"output: {output} is" in said and "input folder in of sources[0].input.paths" in said
    assert "choose an output folder outside the inputs" in said


def test_an_output_beside_or_above_the_inputs_is_fine(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for output in ("out", "inputs", str(tmp_path)):  # a sibling, a name that only starts like it, the parent
        parse_job(job(output))


def test_globs_reach_below_their_folder_only_with_a_folder_wildcard(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parse_job(job("in/out", images("a", "in/*.jpg")))  # matches files right in in/, never in in/out/
    parse_job(job("laion/out", images("a", "laion/{00000..00009}.tar")))
    assert "input folder in of" in problems(job("in", images("a", "in/*.jpg")))  # OUT/job.yaml would be in in/
    assert "inside the input folder in of" in problems(job("in/out", images("a", "in/**/*.jpg")))
    assert "inside the input folder in of" in problems(job("in/out", images("a", "in/*/x.jpg")))
    assert reach("a/b/{x,y}/c.png", braces=True) == ("a/b", True) and reach("*.jpg") == (".", False)
    assert reach("a/{x}/c", braces=True) == ("a/{x}/c", True)  # braces that do not expand are part of the name
    assert reach("a/{x,y}/c") == ("a/{x,y}/c", True)  # inputs whose paths do not expand braces


def test_folder_names_with_braces_are_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frames = {"name": "f", "input": {"format": "frame_folders", "paths": "s {a,b}/frames"}, "template": "video"}
    parse_job(job("s {a,b}/out", frames, images("a", "s {x}/photos")))
    assert "input folder s {a,b}/frames of" in problems(job("s {a,b}/frames/out", frames))


def test_annotation_roots_and_links_count_as_inputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data")
    paired = {
        "name": "p",
        "input": {"format": "paired", "images": "rgb", "annotations": {"depth": {"paths": "d"}}},
        "template": "pairs",
    }
    assert "input folder d of sources[0].input.annotations.depth" in problems(job("d/out", paired))
    assert "input folder data of sources[0].input.paths" in problems(job("link/out", images("a", "data")))


@pytest.mark.parametrize("output", ["https://host/out", "hf://datasets/a/b", "ftp://host/out", "zip://a.zip"])
def test_an_output_scheme_that_cannot_commit_files_is_refused(output):
    said = problems(job(output))
    scheme = output.split("://")[0]
    assert (
        f"output: {output}: {scheme}:// is not supported for outputs (units commit by moving whole files into "
        "place); use a local folder or gs://, s3://, s3a://, gcs://, az://, abfs://, abfss://, memory://" in said
    )


def test_local_gs_and_memory_outputs_are_accepted():
    for output in ("gs://bucket/out", "/tmp/somewhere/out", "memory://out"):
        parse_job(job(output))


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed here")
def test_an_object_store_output_without_its_package_names_the_pip_install():
    assert "output: s3://bucket/out: writing s3:// needs the s3fs package; pip install s3fs" in problems(
        job("s3://bucket/out")
    )


def test_a_template_its_input_cannot_feed_is_refused():
    said = problems(job("out", images("a", "in", "pairs")))
    assert (
        "sources[0].template: pairs cannot build sentences from a images input (every item would fail); it "
        "takes paired, sequences inputs; image/annotation pairs come from format: paired" in said
    )
    video = {"name": "v", "input": {"format": "videos", "paths": "v"}, "template": "category"}
    assert "sources[0].template: category cannot build sentences from a videos input" in problems(job("out", video))
    for template in ("video", "sequence", "multi_annotation", "multiview"):
        assert f"template: {template} cannot build" in problems(job("out", images("a", "in", template)))
    parse_job(job("out", {**video, "template": "single"}))  # single takes every format


def test_the_table_names_known_formats_only():
    assert {f for formats in FEEDS.values() for f in formats} <= set(SOURCES)


def test_run_refuses_before_the_tokenizer_loads(tmp_path):
    """The tokenizer named does not exist: were it loaded first, the error would be about it."""
    path = tmp_path / "job.yaml"
    path.write_text(
        job_text(
            "j", "https://host/out", tmp_path / "no-such-checkpoint", [images("a", [str(tmp_path / "in")], "pairs")]
        )
    )
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 2, result.output
    assert "https:// is not supported for outputs" in result.output and "pairs cannot build" in result.output
    assert "no-such-checkpoint" not in result.output and not (tmp_path / "out").exists()
