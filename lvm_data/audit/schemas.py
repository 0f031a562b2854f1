"""Does a file match schemas/*.json? Column names and types, file metadata, JSON documents.

Each function returns readable problems ('column tokens is list<int32>, expected list<uint16>'),
empty when the file conforms. Arrow field names inside lists ('item' vs 'element') and nullability
are not compared: Parquet round trips change them without changing the data.
"""

from __future__ import annotations

import pyarrow as pa

from lvm_data.audit.files import Entry
from lvm_data.audit.violations import Kind, Violation
from lvm_data.shards.schema import META_PREFIX, arrow_schema, required_metadata, schema_version


def _shape(t: pa.DataType) -> object:
    if pa.types.is_list(t):
        return ("list", _shape(t.value_type))
    if pa.types.is_struct(t):
        return ("struct", tuple((t.field(i).name, _shape(t.field(i).type)) for i in range(t.num_fields)))
    return str(t)


def same_type(actual: pa.DataType, expected: pa.DataType) -> bool:
    return _shape(actual) == _shape(expected)


def column_problems(actual: pa.Schema, name: str) -> list[str]:
    """Differences between a file's Arrow schema and the row schema `name` ('sentence' or 'ledger')."""
    expected = arrow_schema(name)
    problems = []
    for field in expected:
        if field.name not in actual.names:
            problems.append(f"column {field.name} missing")
        elif not same_type(actual.field(field.name).type, field.type):
            problems.append(f"column {field.name} is {actual.field(field.name).type}, expected {field.type}")
    problems += [f"column {c} is not in schemas/{name}.schema.json" for c in actual.names if c not in expected.names]
    return problems


def metadata_problems(meta: dict[str, str], name: str) -> list[str]:
    """Missing required `lvm_data.*` keys, a schema version of another major version, non-integer sizes."""
    problems = [
        f"file metadata {key} missing" for key in required_metadata(name) if key[len(META_PREFIX) :] not in meta
    ]
    version = meta.get("schema_version")
    if version is not None and version.split(".")[0] != schema_version(name).split(".")[0]:
        problems.append(
            f"file metadata {META_PREFIX}schema_version is {version}, this lvm-data reads {schema_version(name)}"
        )
    for key in ("codebook_size", "tokens_per_image"):
        if key in meta and not meta[key].isdigit():
            problems.append(f"file metadata {META_PREFIX}{key} is {meta[key]!r}, expected an integer")
    return problems


def file_violations(actual: pa.Schema, meta: dict[str, str], name: str, entry: Entry) -> tuple[list[Violation], set]:
    """Schema, metadata and partition violations of a Parquet file, and the set of malformed columns."""
    problems = column_problems(actual, name)
    broken = {p.split()[1] for p in problems}
    problems += metadata_problems(meta, name)
    found = [Violation(Kind.SCHEMA_MISMATCH, entry.uri, p) for p in problems]
    for key, expected in (("source", entry.source), ("unit", entry.unit)):
        if key in meta and meta[key] != expected:
            found.append(
                Violation(
                    Kind.WRONG_PARTITION,
                    entry.uri,
                    f"file metadata says {key} {meta[key]!r}, the path says {expected!r}",
                )
            )
    return found, broken
