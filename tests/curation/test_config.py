import pytest

from lvm_data.curation.config import Bounds, FilterConfigError, NearDuplicates, parse_filters
from lvm_data.job.config import JobConfigError, index_sources, parse_job, sentence_sources


def job(*sources) -> dict:
    return {"name": "j", "output": "out", "sources": list(sources)}


def source(name: str, filters, fmt: str = "images") -> dict:
    return {"name": name, "input": {"format": fmt, "paths": "x"}, "filters": filters}


def problems(raw) -> str:
    with pytest.raises(JobConfigError) as err:
        parse_job(raw, "job.yaml")
    return str(err.value)


def test_names_and_options_become_settings_with_defaults():
    filters = parse_filters(
        [
            {"bounds": {"min_side": 128}},
            {"low_variance": {}},
            {"duplicates": {}},
            {"near_duplicates": {"max_distance": 8}},
        ]
    )
    assert filters.items[0] == Bounds(min_side=128, min_area=0, max_aspect=3.0)
    assert filters.get("near_duplicates") == NearDuplicates(max_distance=8)
    assert filters.get("near_duplicates").banding.max_distance >= 8
    assert filters.indexed and not filters.sentences and filters.any
    assert not parse_filters([]).any


def test_the_job_file_accepts_shorthand_and_normalises_it():
    parsed = parse_job(job(source("a", ["duplicates", {"near_duplicates": None}, {"bounds": {"min_side": 32}}])))
    assert parsed.sources[0].filters == ({"duplicates": {}}, {"near_duplicates": {}}, {"bounds": {"min_side": 32}})
    assert index_sources(parsed) == ["a"] and sentence_sources(parsed) == []


def test_schema_errors_name_the_filter_field():
    assert "sources[0].filters[0]" in problems(job(source("a", ["dedupe"])))
    text = problems(job(source("a", [{"bounds": {"min_sides": 3}}])))
    assert "sources[0].filters[0].bounds: Additional properties" in text and "allowed fields: max_aspect" in text
    assert "scene_cuts.action" in problems(job(source("a", [{"scene_cuts": {"action": "cut"}}], "videos")))


def test_semantic_checks():
    assert "bounds needs the original image size" in problems(job(source("a", ["bounds"], "frame_folders")))
    assert "static_clips works on sampled clips" in problems(job(source("a", ["static_clips"])))
    text = problems(job(source("a", [{"near_duplicates": {"max_distance": 8, "bands": 4, "radius": 0}}])))
    assert "bands x (radius + 1) > max_distance" in text
    text = problems(
        job(
            source("a", [{"near_duplicates": {"max_distance": 4}}]),
            source("b", [{"near_duplicates": {"max_distance": 6}}]),
        )
    )
    assert "near_duplicates options differ from source 'a'" in text
    text = problems(job(source("a", [{"blocklist": {"hash_files": ["/no/such/file.txt"]}}])))
    assert "sources[0].filters.blocklist: /no/such/file.txt: blocklist file not found" in text
    assert "listed twice" in problems(job(source("a", ["duplicates", "duplicates"])))


def test_parse_errors_name_the_entry():
    with pytest.raises(FilterConfigError, match=r"filters\[0\]: unknown filter 'sharpness'"):
        parse_filters(["sharpness"])
    with pytest.raises(FilterConfigError, match=r"filters\[1\].near_duplicate_sentences: permutations"):
        parse_filters(["duplicates", {"near_duplicate_sentences": {"permutations": 100}}])
