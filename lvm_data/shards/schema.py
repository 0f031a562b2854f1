"""The machine-readable schemas in schemas/ turned into Arrow schemas and JSON validators.

schemas/*.json are the truth; this module only reads them.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import pyarrow as pa
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from referencing import Registry, Resource

SCHEMA_FILES = ("sentence", "ledger", "unit", "manifest", "job")
META_PREFIX = "lvm_data."


@cache
def load_schema(name: str) -> dict:
    """The JSON schema `schemas/{name}.schema.json`."""
    return json.loads((resources.files("lvm_data.schemas") / f"{name}.schema.json").read_text())


def schema_version(name: str = "sentence") -> str:
    return load_schema(name)["x-schema-version"]


@cache
def _registry() -> Registry:
    resources_ = [
        (f"{n}.schema.json", Resource.from_contents(load_schema(n)))
        for n in SCHEMA_FILES
        if (resources.files("lvm_data.schemas") / f"{n}.schema.json").is_file()
    ]
    return Registry().with_resources(resources_)


@cache
def validator(name: str) -> Validator:
    schema = load_schema(name)
    cls = validator_for(schema)
    return cls(schema, registry=_registry())


def validation_errors(name: str, document: object) -> list[str]:
    """Readable messages ('field.path: problem') for a document checked against schema `name`."""
    # the stubs ask for a JSON value; any object is checked (what is not one is an error like any other)
    errors = sorted(
        validator(name).iter_errors(document),  # pyright: ignore[reportArgumentType]
        key=lambda e: list(e.absolute_path),
    )
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}" for e in errors]


def _arrow_type(spec) -> pa.DataType:
    if isinstance(spec, str):
        return {
            "string": pa.string(),
            "int32": pa.int32(),
            "int64": pa.int64(),
            "uint16": pa.uint16(),
            "float32": pa.float32(),
            "float64": pa.float64(),
            "bool": pa.bool_(),
        }[spec]
    if "list" in spec:
        return pa.list_(_arrow_type(spec["list"]))
    if "struct" in spec:
        return pa.struct([pa.field(k, _arrow_type(v)) for k, v in spec["struct"].items()])
    raise ValueError(f"unknown x-arrow type {spec!r}")


@cache
def arrow_schema(name: str) -> pa.Schema:
    """Arrow schema of a row schema ('sentence' or 'ledger'), columns in the schema's order."""
    props = load_schema(name)["properties"]
    return pa.schema([pa.field(col, _arrow_type(p["x-arrow"]), nullable=False) for col, p in props.items()])


def required_metadata(name: str) -> list[str]:
    return list(load_schema(name).get("x-file-metadata", {}).get("required", []))


def file_metadata(**values: object) -> dict[bytes, bytes]:
    """Parquet key-value metadata: keys get the `lvm_data.` prefix, values are strings."""
    return {f"{META_PREFIX}{k}".encode(): str(v).encode() for k, v in values.items()}


def read_metadata(raw: dict[bytes, bytes] | None) -> dict[str, str]:
    """Our keys from Parquet key-value metadata, prefix stripped."""
    raw = raw or {}
    return {k.decode()[len(META_PREFIX) :]: v.decode() for k, v in raw.items() if k.decode().startswith(META_PREFIX)}
