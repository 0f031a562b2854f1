import dataclasses
import hashlib
import json

import pytest

from lvm_data.job.config import (
    DEFAULT_TOKENIZER,
    JobConfigError,
    changed_defaults,
    config_hash,
    load_job,
    output_config,
    parse_job,
    parse_job_text,
    source_options,
)

MINIMAL = """
name: photos
output: out/photos
sources:
  - name: web
    input: {format: images, paths: [data/photos]}
"""


def job_dict(**top) -> dict:
    raw = {
        "name": "j",
        "output": "out",
        "sources": [{"name": "a", "input": {"format": "images", "paths": "x"}, "template": "single"}],
    }
    raw.update(top)
    return raw


def problems_of(raw) -> str:
    with pytest.raises(JobConfigError) as err:
        parse_job(raw, "job.yaml")
    return str(err.value)


def test_minimal_job_gets_defaults():
    job = parse_job_text(MINIMAL)
    assert job.name == "photos" and job.output == "out/photos"
    assert job.tokenizer == DEFAULT_TOKENIZER and job.resize == "squash" and job.image_size is None
    assert job.seed == 0 and job.shard_size == "auto" and job.batch_size == "auto"
    assert (job.dtype, job.device, job.compile) == ("auto", "auto", "auto")
    (src,) = job.sources
    assert (src.name, src.format, src.template, src.template_options) == ("web", "images", "single", {})
    assert src.input == {"format": "images", "paths": ["data/photos"]}


def test_template_object_form_carries_options():
    raw = job_dict()
    raw["sources"][0]["template"] = {"name": "single", "task": "photo"}
    src = parse_job(raw).sources[0]
    assert src.template == "single" and src.template_options == {"task": "photo"}


def test_source_options_default_shard_size_from_job_and_input_overrides():
    job = parse_job(job_dict(shard_size=7))
    assert source_options(job, job.sources[0])["shard_size"] == 7
    raw = job_dict(shard_size=7)
    raw["sources"][0]["input"]["shard_size"] = 3
    job = parse_job(raw)
    assert source_options(job, job.sources[0])["shard_size"] == 3


def test_load_job_reads_a_file(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(MINIMAL)
    assert load_job(str(path)).name == "photos"


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(JobConfigError, match="nope.yaml: job file not found"):
        load_job(str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize(
    ("text", "expected"), [("name: [unclosed", "not valid YAML"), ("- just\n- a list\n", "a job file is a mapping")]
)
def test_unparseable_files(text, expected):
    with pytest.raises(JobConfigError, match=expected):
        parse_job_text(text, "job.yaml")


def test_missing_required_field_is_named():
    raw = job_dict()
    del raw["output"]
    assert "'output' is a required property" in problems_of(raw)


def test_bad_enum_lists_the_allowed_values():
    message = problems_of(job_dict(resize="stretch"))
    assert "resize: 'stretch' is not allowed; use one of squash, center_crop, pad" in message


def test_unknown_top_level_field_lists_allowed_fields():
    message = problems_of(job_dict(shardsize=5))
    assert "shardsize" in message and "allowed fields:" in message and "shard_size" in message


def test_typo_in_format_options_is_named_with_its_path():
    raw = job_dict()
    raw["sources"][0]["input"] = {"format": "parquet", "paths": "x.parquet", "colum": "img"}
    message = problems_of(raw)
    assert "sources[0].input" in message and "colum" in message and "column" in message


def test_unknown_format_and_template_list_the_known_ones():
    raw = job_dict()
    raw["sources"][0]["input"]["format"] = "tfrecord"
    raw["sources"][0]["template"] = "collage"
    message = problems_of(raw)
    assert "sources[0].input.format: 'tfrecord' is not a known format; use one of" in message
    assert "images" in message and "webdataset" in message
    assert "sources[0].template: 'collage' is not a known template; use one of" in message
    assert "single" in message.rsplit("template;", 1)[-1]


def test_duplicate_source_names_are_refused():
    raw = job_dict()
    raw["sources"].append(dict(raw["sources"][0]))
    assert "sources[1].name: 'a' is used twice" in problems_of(raw)


def test_bad_types_and_ranges():
    message = problems_of(job_dict(seed=-1, shard_size=0, device="gpu", name="bad name"))
    for field in ("seed", "shard_size", "device", "name"):
        assert f"\n  {field}:" in message


def test_hf_input_needs_exactly_one_location():
    raw = job_dict()
    raw["sources"][0]["input"] = {"format": "hf", "split": "train"}
    assert "sources[0].input" in problems_of(raw)


def test_config_hash_follows_output_relevant_fields_only():
    job = parse_job(job_dict())
    base = config_hash(job, "fp")
    assert config_hash(dataclasses.replace(job, output="elsewhere", batch_size=7, device="cpu"), "fp") == base
    assert config_hash(dataclasses.replace(job, seed=1), "fp") != base
    assert config_hash(dataclasses.replace(job, limit=5), "fp") != base
    assert config_hash(job, "other weights") != base
    runner = dataclasses.replace(job, decode_workers=3, decode_pool="threads", compile=False)
    assert config_hash(runner, "fp") == base  # how the job runs, not what it writes
    assert config_hash(dataclasses.replace(job, jpeg_draft=True), "fp") != base  # other pixels
    assert config_hash(dataclasses.replace(job, jpeg_draft=False), "fp") == base  # off: the hash of earlier runs


def test_relative_item_keys_enter_the_hash_so_outputs_with_uri_keys_are_refused():
    """Every source's keys, seeds and ids changed when keys became relative to their paths entry: the hashed config
    says so, and the hash of the same config without it (what earlier versions wrote) is another one."""
    job = parse_job(job_dict())
    config = output_config(job)
    assert config["keys"] == "relative"
    before = {k: v for k, v in config.items() if k != "keys"}
    text = json.dumps({**before, "tokenizer_fingerprint": "fp"}, sort_keys=True, separators=(",", ":"), default=str)
    assert hashlib.blake2b(text.encode(), digest_size=16).hexdigest() != config_hash(job, "fp")


def test_runner_settings_are_checked():
    for field, value in (("decode_pool", "gpu"), ("decode_workers", 0), ("jpeg_draft", "yes")):
        raw = {**job_dict(), field: value}
        assert field in problems_of(raw), field
    job = parse_job({**job_dict(), "decode_workers": 4, "decode_pool": "processes"})
    assert (job.decode_workers, job.decode_pool, job.jpeg_draft) == (4, "processes", False)


def test_sources_relying_on_a_changed_default_get_another_hash():
    """LVM's rules became defaults: outputs written under the old ones are refused, not resumed with the new."""

    def source(raw: dict):
        return parse_job({**job_dict(), "sources": [raw]})

    video = {"name": "v", "input": {"format": "videos", "paths": "x", "clip": {"frames": 16}}, "template": "video"}
    job = source(video)
    assert changed_defaults(job.sources[0]) == {"clip.fit": "lvm"}
    assert output_config(job)["sources"][0]["defaults"] == {"clip.fit": "lvm"}  # hashed: not the hash of before
    for fit in ("lvm", "skip"):  # named: the source says what it wants, its hash is what it always was
        assert changed_defaults(source({**video, "input": {**video["input"], "clip": {"fit": fit}}}).sources[0]) == {}
    assert changed_defaults(parse_job(job_dict()).sources[0]) == {}  # untouched sources keep their hash
    plain = job_dict()["sources"][0]
    inpaint = {**plain, "template": {"name": "derived", "task": "inpainting"}}
    assert changed_defaults(source(inpaint).sources[0]) == {"mask": "lvm"}
    boxed = {**plain, "template": {"name": "derived", "task": "inpainting", "mask": "box"}}
    assert changed_defaults(source(boxed).sources[0]) == {}
    multi = {
        "name": "m",
        "input": {"format": "paired", "images": "x", "annotations": {"depth": "y"}},
        "template": "multi_annotation",
    }
    assert changed_defaults(source(multi).sources[0]) == {"order": "shared"}


def test_auto_shard_size_aims_at_files_of_256_mb_and_batch_size_follows_the_device():
    from lvm_data.job.config import auto_shard_size, batch_size_for, with_resolved

    job = parse_job(
        {
            "name": "j",
            "output": "o",
            "sources": [
                {"name": "web", "input": {"format": "images", "paths": "x"}},
                {"name": "set", "input": {"format": "images", "paths": "y", "shard_size": 10}},
                {"name": "clips", "input": {"format": "videos", "paths": "z"}, "template": "video"},
            ],
        }
    )
    resolved = with_resolved(job, 256, 256)
    sizes = [src.input["shard_size"] for src in resolved.sources]
    assert sizes == [auto_shard_size(job.sources[0], 256), 10, auto_shard_size(job.sources[2], 256)]
    assert 255.9e6 <= sizes[0] * 256 * 1.7 <= 256e6  # 588k single images of 256 tokens at 1.7 bytes/token
    assert 255.9e6 <= sizes[2] * 16 * 4 * 256 * 1.7 <= 256e6  # videos: 4 clips of 16 frames each (an estimate)
    assert config_hash(resolved, "fp") != config_hash(with_resolved(job, 256, 64), "fp")  # the number is hashed
    assert [batch_size_for(job, d) for d in ("cuda:0", "cuda", "cpu", "mps")] == [256, 256, 32, 32]
    assert (
        batch_size_for(
            parse_job(
                {
                    "name": "j",
                    "output": "o",
                    "batch_size": 8,
                    "sources": [{"name": "web", "input": {"format": "images", "paths": "x"}}],
                }
            ),
            "cuda:0",
        )
        == 8
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 5000, "nested too deeply"),
        (MINIMAL + "seed: " + "1" * 5000 + "\n", "4300 digits"),
        ("!!timestamp name: photos\n" + MINIMAL, "AttributeError"),
        (MINIMAL + "jpeg_draft: !!bool x\n", "KeyError"),
        (MINIMAL + "seed: !!int ''\n", "IndexError"),
    ],
)
def test_yaml_that_pyyaml_fails_on_outside_its_own_errors_is_a_job_config_error(text, message):
    """Found by benchmarks/fuzz.py: RecursionError, ValueError, AttributeError, KeyError and IndexError escaped
    yaml.safe_load."""
    with pytest.raises(JobConfigError, match=message) as err:
        parse_job_text(text, where="job.yaml")
    assert str(err.value).startswith("job.yaml: ")
