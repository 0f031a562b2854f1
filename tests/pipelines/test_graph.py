"""The main job's Beam graph distributes work units only: nothing groups after decoding, and what crosses
the graph holds no media bytes and no decoded frames (webdataset members travel inline in the refs a
worker reads, so they are the case to watch)."""

import dataclasses
import pickle

import apache_beam as beam
import numpy as np

from lvm_data.items import Part
from lvm_data.job.config import parse_job_text
from lvm_data.job.runs import open_run
from lvm_data.media.samples import photos
from lvm_data.testing import write_tar
from lvm_data.tokenizer import load
from pipelines import tokenize
from pipelines.tokenize import build, run_job

GROUPING_URNS = (
    "beam:transform:group_by_key:v1",
    "beam:transform:combine_per_key:v1",
    "beam:transform:combine_grouped_values:v1",
)


def mixed_job(tmp_path) -> str:
    """A webdataset source (bytes inline), loose files, and a grouping template over folders."""
    pics = photos("all")
    (tmp_path / "tars").mkdir()
    for t in range(2):
        write_tar(
            tmp_path / "tars" / f"{t:05d}.tar",
            [(f"{i:03d}.png", p.read_bytes()) for i, p in enumerate(pics[4 * t : 4 * t + 4])],
        )
    for folder, chosen in (("cats", pics[:3]), ("dogs", pics[3:6])):
        (tmp_path / "classes" / folder).mkdir(parents=True)
        for p in chosen:
            (tmp_path / "classes" / folder / p.name).write_bytes(p.read_bytes())
    import yaml

    return yaml.safe_dump(
        {
            "name": "g",
            "output": str(tmp_path / "out"),
            "tokenizer": "standin:1000",
            "shard_size": 2,
            "sources": [
                {"name": "web", "input": {"format": "webdataset", "paths": str(tmp_path / "tars")}},
                {"name": "files", "input": {"format": "images", "paths": [str(p) for p in pics[:3]]}},
                {
                    "name": "classes",
                    "input": {"format": "images", "paths": str(tmp_path / "classes")},
                    "template": {"name": "category", "label": "folder", "shot_size": 2},
                },
            ],
        }
    )


def transforms_after(components, start: str) -> set[str]:
    """Ids of the transforms that consume, directly or not, an output of transform `start`."""
    consumers: dict[str, list[str]] = {}
    for tid, t in components.transforms.items():
        if not t.subtransforms:
            for pcoll in t.inputs.values():
                consumers.setdefault(pcoll, []).append(tid)
    seen, todo = set(), list(components.transforms[start].outputs.values())
    while todo:
        for tid in consumers.get(todo.pop(), []):
            if tid not in seen:
                seen.add(tid)
                todo += list(components.transforms[tid].outputs.values())
    return seen


def test_nothing_groups_downstream_of_the_step_that_decodes(tmp_path):
    text = mixed_job(tmp_path)
    run = open_run(parse_job_text(text), load("standin:1000"))
    p = beam.Pipeline()
    build(p, run)
    components = p.to_runner_api().components
    by_name = {t.unique_name: tid for tid, t in components.transforms.items()}
    process = by_name["ProcessUnits"]
    groupings = {tid for tid, t in components.transforms.items() if t.spec.urn in GROUPING_URNS}
    assert groupings, "the graph groups read-unit descriptors of the grouping source (GroupBuckets)"
    assert not groupings & transforms_after(components, process)
    assert not [
        components.transforms[t].unique_name
        for t in transforms_after(components, process)
        if components.transforms[t].spec.urn == "beam:transform:pardo:v1"
    ], "ProcessUnits is the last step"


def media_in(value, path="element") -> list[str]:
    """Where `value` holds media: bytes of any size, inline Part data, numpy arrays (decoded frames)."""
    if isinstance(value, bytes | bytearray | memoryview) and len(value) > 64:
        return [f"{path}: {len(value)} bytes"]
    if isinstance(value, np.ndarray):
        return [f"{path}: array {value.shape}"]
    if isinstance(value, Part) and value.data is not None:
        return [f"{path}: inline part data"]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [m for f in dataclasses.fields(value) for m in media_in(getattr(value, f.name), f"{path}.{f.name}")]
    if isinstance(value, dict):
        return [m for k, v in value.items() for m in media_in(v, f"{path}[{k!r}]")]
    if isinstance(value, list | tuple | set | frozenset):
        return [m for i, v in enumerate(value) for m in media_in(v, f"{path}[{i}]")]
    return []


def test_the_elements_of_the_graph_are_descriptors_without_media(tmp_path, monkeypatch):
    seen = []
    for cls in (tokenize.ListBuckets, tokenize.BucketUnits, tokenize.ProcessUnits):
        original = cls.process

        def recording(self, element, _original=original, _name=cls.__name__):
            seen.append((_name, element))
            for out in _original(self, element):
                seen.append((f"{_name} output", out))
                yield out

        monkeypatch.setattr(cls, "process", recording)
    text = mixed_job(tmp_path)
    manifest = run_job(parse_job_text(text), text, [])
    assert manifest["sources"]["web"]["ok"] == 8 and manifest["sources"]["classes"]["inputs"] == 6
    steps = {name for name, _ in seen}
    assert {"ListBuckets", "BucketUnits", "ProcessUnits"} <= steps
    for name, element in seen:
        if name == "ProcessUnits output":
            continue  # markers: counts and file names, written after the unit committed
        assert media_in(element) == [], name
        assert len(pickle.dumps(element)) < 4096, name


def test_a_bucket_staged_for_token_space_dedup_is_not_encoded_again(tmp_path):
    text = mixed_job(tmp_path)
    run = open_run(parse_job_text(text), load("standin:1000"))
    plan = run.plans["classes"]
    staged, other = plan.write_units[0], plan.write_units[-1]
    staged_plan = dataclasses.replace(plan, staged=frozenset({staged}))
    run = dataclasses.replace(run, plans={**run.plans, "classes": staged_plan})
    read_unit = plan.read_units[0]
    units = tokenize.BucketUnits(run)
    assert list(units.process((("classes", staged), [read_unit, None]))) == []
    (work,) = units.process((("classes", other), [read_unit, None, read_unit]))
    assert (work.unit, work.grouped, work.read_units) == (other, True, (read_unit,))
