"""The job file (YAML) as frozen dataclasses (lvm_data.job.jobfile), validated against schemas/job.schema.json.

`load_job(path)` is the one way in: the CLI builds a `JobConfig` once and passes it down; the sources'
`filters:` are parsed there, once, into `JobConfig.curation` (lvm_data.curation.config). Errors are
`JobConfigError`s that name the file and the field (`sources[0].input.column: ...`) and say what is
allowed. `config_hash(job, fingerprint)` hashes what changes the output (not the output location,
not runner settings such as device or batch size) for file metadata, markers and the manifest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, cast

import jsonschema
import jsonschema.exceptions
import yaml

from lvm_data import storage
from lvm_data.curation.config import parse_curation
from lvm_data.items import DEFAULT_MAX_ITEM_BYTES
from lvm_data.job.jobfile import DEFAULT_TEMPLATE, JobConfig, SourceConfig
from lvm_data.job.jobfile import DEFAULT_TOKENIZER as DEFAULT_TOKENIZER  # re-exported
from lvm_data.job.validate import job_problems
from lvm_data.sentences.registry import TEMPLATES
from lvm_data.shards.schema import validator
from lvm_data.sources.registry import SOURCES


class JobConfigError(ValueError):
    """A job file that cannot be run; the message names the file, the field and the fix."""


def load_job(path: str) -> JobConfig:
    """Read and validate a job file (local path or gs://)."""
    return parse_job_text(read_job_file(path), where=path)


def read_job_file(path: str) -> str:
    try:
        return storage.read_bytes(path).decode("utf-8")
    except FileNotFoundError as err:
        raise JobConfigError(f"{path}: job file not found") from err
    except (OSError, UnicodeDecodeError) as err:
        raise JobConfigError(f"{path}: cannot read the job file ({err})") from err


def parse_job_text(text: str, where: str = "job file") -> JobConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise JobConfigError(f"{where}: not valid YAML ({err})") from err
    except RecursionError as err:  # PyYAML recurses per level of nesting (found by benchmarks/fuzz.py)
        raise JobConfigError(f"{where}: nested too deeply to read; a job file needs a few levels") from err
    except (ValueError, LookupError, AttributeError) as err:  # PyYAML's constructors: `!!timestamp x`, `!!bool x`,
        # `!!int ''`, a number of more than 4300 digits (found by benchmarks/fuzz.py)
        raise JobConfigError(
            f"{where}: not valid YAML ({type(err).__name__}: {err}); check the values with an "
            "explicit tag (!!int, !!timestamp, ...) and numbers of more than 4300 digits"
        ) from err
    return parse_job(raw, where)


def parse_job(raw: Any, where: str = "job file") -> JobConfig:
    """A validated JobConfig from the parsed YAML mapping."""
    if not isinstance(raw, dict):
        raise JobConfigError(
            f"{where}: a job file is a mapping with name, output and sources; got {type(raw).__name__}"
        )
    problems = schema_problems(raw)
    if problems:
        raise JobConfigError(f"{where}: invalid job file:\n  " + "\n  ".join(problems))
    sources = tuple(_source(s) for s in raw["sources"])
    curation, filter_problems = parse_curation([(s.name, s.format, s.filters) for s in sources])
    top = {k: v for k, v in raw.items() if k != "sources"}
    job = JobConfig(sources=sources, curation=curation, **top)
    problems = semantic_problems(job, filter_problems)
    if problems:
        raise JobConfigError(f"{where}: invalid job file:\n  " + "\n  ".join(problems))
    return job


def schema_problems(raw: dict) -> list[str]:
    """'field.path: what is wrong' for every schema violation, most specific cause first."""
    errors = sorted(validator("job").iter_errors(raw), key=lambda e: list(map(str, e.absolute_path)))
    return [_describe(e) for e in errors]


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator in ("oneOf", "anyOf") and error.context:
        deepest = jsonschema.exceptions.best_match(error.context)
        if deepest is not None and len(deepest.absolute_path) > len(error.absolute_path):
            error = deepest
    where = _field_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(cast(dict, error.schema).get("properties", {}))  # the object schema that failed
        return f"{where}: {error.message}; allowed fields: {', '.join(allowed)}"
    if error.validator == "enum":
        values = cast(list, error.validator_value)  # the enum's values
        return f"{where}: {error.instance!r} is not allowed; use one of {', '.join(map(str, values))}"
    return f"{where}: {error.message}"


def _field_path(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def semantic_problems(job: JobConfig, filter_problems: list[str]) -> list[str]:
    """Checks the schema cannot express: known formats and templates, unique source names, usable filters (found
    while parsing them: lvm_data.curation.config.parse_curation), and (lvm_data.job.validate) the output's scheme
    and place, templates their input format can feed."""
    problems, seen = [], set()
    for i, src in enumerate(job.sources):
        if src.name in seen:
            problems.append(f"sources[{i}].name: {src.name!r} is used twice; source names must be unique")
        seen.add(src.name)
        if src.format not in SOURCES:
            problems.append(
                f"sources[{i}].input.format: {src.format!r} is not a known format; "
                f"use one of {', '.join(sorted(SOURCES))}"
            )
        if src.template not in TEMPLATES:
            problems.append(
                f"sources[{i}].template: {src.template!r} is not a known template; "
                f"use one of {', '.join(sorted(TEMPLATES))}"
            )
    return problems + filter_problems + job_problems(job)


def _source(raw: dict) -> SourceConfig:
    template = raw.get("template", DEFAULT_TEMPLATE)
    if isinstance(template, str):
        name, options = template, {}
    else:
        name, options = template["name"], {k: v for k, v in template.items() if k != "name"}
    return SourceConfig(
        name=raw["name"],
        format=raw["input"]["format"],
        input=dict(raw["input"]),
        template=name,
        template_options=options,
        filters=tuple(_filter(f) for f in raw.get("filters", ())),
    )


def _filter(entry: str | dict) -> dict[str, dict]:
    """A `filters:` entry as {name: options}: `- duplicates` and `- duplicates:` mean `- duplicates: {}`."""
    if isinstance(entry, str):
        return {entry: {}}
    return {name: dict(options or {}) for name, options in entry.items()}


def index_sources(job: JobConfig) -> list[str]:
    """Sources whose items the job-wide image dedup index decides about."""
    return job.curation.index_sources()


def sentence_sources(job: JobConfig) -> list[str]:
    """Sources whose sentences take part in token-space dedup (their units are staged, then decided together)."""
    return job.curation.sentence_sources()


def source_options(job: JobConfig, src: SourceConfig) -> dict[str, Any]:
    """The options a Source is built with: its input block, with the job's shard_size, seed and max_item_bytes
    (a container source checks its members against it) as defaults."""
    return {"shard_size": job.shard_size, "seed": job.seed, "max_item_bytes": job.max_item_bytes, **src.input}


def shard_size_of(job: JobConfig, src: SourceConfig) -> int:
    """Items per unit of a source: its input's shard_size, else the job's (`auto` is resolved by with_resolved)."""
    size = src.input.get("shard_size", job.shard_size)
    if size == "auto":
        raise ValueError(f"source {src.name}: shard_size auto is resolved when the job meets its tokenizer (bug)")
    return int(size)


TARGET_FILE_BYTES = 256 * 10**6  # DESIGN: shard files of 256 MB-1 GB
BYTES_PER_TOKEN = 1.7  # DESIGN's target, held by `lvm-data bench pipeline`
IMAGES_PER_ITEM = {"pairs": 2.0, "derived": 2.0, "multi_annotation": 4.0}  # templates whose items give more images
CLIPS_PER_VIDEO = 4  # an estimate for `clips: all` (videos of ~10 s at LVM's strides)
CLIP_FRAMES = 16  # LVM's clip length (lvm_data.media.clips default)


def images_per_item(src: SourceConfig) -> float:
    """About how many encoded images one item of the source gives (sizes units; the files tell the truth)."""
    if src.format in CLIP_FORMATS:
        clip = src.input.get("clip") or {}
        clips = clip.get("clips") if isinstance(clip.get("clips"), int) else CLIPS_PER_VIDEO
        strides = clip.get("strides")
        return float(clip.get("frames", CLIP_FRAMES) * clips * (len(strides) if isinstance(strides, list) else 1))
    return IMAGES_PER_ITEM.get(src.template, 1.0)


def auto_shard_size(src: SourceConfig, tokens_per_image: int) -> int:
    """Items per unit for files of about TARGET_FILE_BYTES: 588k single 256-token images, 9k 64-frame videos."""
    return max(1, int(TARGET_FILE_BYTES / (BYTES_PER_TOKEN * tokens_per_image * images_per_item(src))))


GPU_BATCH_SIZE, CPU_BATCH_SIZE = 256, 32  # DESIGN's encoder figures are at 256 per GPU; a CPU gains little above 32


def batch_size_for(job: JobConfig, device: str) -> int:
    """Images per encoder batch on `device` (cuda, cuda:N, cpu, mps)."""
    if job.batch_size != "auto":
        return int(job.batch_size)
    return GPU_BATCH_SIZE if device.startswith("cuda") else CPU_BATCH_SIZE


def output_config(job: JobConfig) -> dict[str, Any]:
    """What changes the output rows, as plain data (hashed and stored in the manifest)."""
    return {
        "image_size": job.image_size,
        "resize": job.resize,
        "seed": job.seed,
        "shard_size": job.shard_size,
        "dtype": job.dtype,
        "max_pixels": job.max_pixels,
        "limit": job.limit,
        "sources": [
            {
                "name": s.name,
                "input": s.input,
                "template": s.template,
                "template_options": s.template_options,
                "filters": list(s.filters),
                **({"defaults": d} if (d := changed_defaults(s)) else {}),
            }
            for s in job.sources
        ],
        **({"jpeg_draft": True} if job.jpeg_draft else {}),  # absent when off: outputs from before it keep their hash
        **({"max_item_bytes": job.max_item_bytes} if job.max_item_bytes != DEFAULT_MAX_ITEM_BYTES else {}),  # same
        "keys": KEYS,
    }


KEYS = "relative"  # item keys relative to their paths entry, ids hashing frame names, not URIs (sources.listing):
# hashed so that an output written with URI keys is refused ("another job configuration"), never mixed by a resume


CLIP_FORMATS = ("videos", "frame_folders", "sequences")


def changed_defaults(src: SourceConfig) -> dict[str, str]:
    """Defaults that changed after outputs were first written (LVM's rules), where the source relies on them.

    They enter the source's part of the config hash, so an output written under the old default is refused
    ("another job configuration") instead of being resumed with the new one; a source that names the option,
    or that none of them touches, keeps the hash it had.
    """
    out = {}
    if src.format in CLIP_FORMATS and "fit" not in (src.input.get("clip") or {}):
        out["clip.fit"] = "lvm"
    if (
        src.template == "derived"
        and src.template_options.get("task") == "inpainting"
        and "mask" not in src.template_options
    ):
        out["mask"] = "lvm"
    if src.template == "multi_annotation" and "order" not in src.template_options:
        out["order"] = "shared"
    return out


def config_hash(job: JobConfig, tokenizer_fingerprint: str) -> str:
    """blake2b-128 of the canonical JSON of `output_config` plus the tokenizer's weights fingerprint.

    The tokenizer enters by fingerprint, not location: moving a checkpoint keeps the hash, new weights
    at the same path change it. `image_size` enters resolved, so `None` and the tokenizer's own size agree.
    """
    payload = {**output_config(job), "tokenizer_fingerprint": tokenizer_fingerprint}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def job_to_dict(job: JobConfig) -> dict[str, Any]:
    """The whole job as plain data (for the manifest): the job file's fields, filters as written (not parsed)."""
    data = dataclasses.asdict(job)
    del data["curation"]
    return data


def with_resolved(job: JobConfig, image_size: int, tokens_per_image: int) -> JobConfig:
    """The job with image_size filled in from the tokenizer (checked by the caller to match), and with
    `shard_size: auto` resolved per source (into its input, so the hash and the manifest hold the number)."""
    sources = job.sources
    if job.shard_size == "auto":
        sources = tuple(
            src
            if "shard_size" in src.input
            else dataclasses.replace(src, input={**src.input, "shard_size": auto_shard_size(src, tokens_per_image)})
            for src in sources
        )
    return dataclasses.replace(job, image_size=image_size, sources=sources)


def with_overrides(text: str, where: str, **overrides) -> tuple[JobConfig, str]:
    """The job and its YAML with top-level fields replaced (None leaves a field as it is).

    Without overrides the text is returned unchanged (comments kept); with them it is re-serialised,
    so that OUT/job.yaml always describes the run that wrote OUT.
    """
    job = parse_job_text(text, where)  # readable errors for the file as written
    changes = {k: v for k, v in overrides.items() if v is not None}
    if not changes:
        return job, text
    raw = {**yaml.safe_load(text), **changes}
    header = f"# {where} as run, with {', '.join(f'{k}={v}' for k, v in changes.items())}\n"
    new_text = header + yaml.safe_dump(raw, sort_keys=False)
    return parse_job(raw, where), new_text
