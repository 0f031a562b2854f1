"""The mix file (`lvm-data mix MIX.yaml`): which job outputs, which of their sentences, in what shares.

```yaml
name: laion-video-mix
output: out/mix                  # local folder or gs://bucket/prefix
seed: 0                          # the order and every subsample hash from it
validation: 0.01                 # share of sentences held out, by a hash of the sentence id alone
dedup: false                     # true: exact duplicate sentences (same codes) across parts kept once
shard_bytes: 256000000           # training shard size on disk (DESIGN: 256 MB-1 GB)
total_tokens: 1000000000         # optional: the mix's size when every part is given by weight
parts:
  - name: laion
    inputs: [out/laion-0, out/laion-1]     # job outputs (slices of one job too)
    select: {source: laion}                 # optional: source / template / task, a value or a list
    weight: 0.7                             # this share of the mix's training tokens ...
  - name: video
    inputs: [out/video]
    epochs: 2.5                             # ... or this many passes over the part (2 copies + half)
```

A sentence belongs to the first part that selects it. Sizes: parts given by `epochs` contribute epochs x their
tokens (E); parts given by `weight` share the rest, so the mix holds N tokens with N = E / (1 - sum of weights)
when both kinds are present (the weights must then sum to less than 1), N = total_tokens or the weighted parts'
own tokens when all are weighted (weights are then normalised), N = E when none is. A weighted part's epochs are
weight x N / its tokens: above 1 it repeats, below 1 it is subsampled. Errors name the field and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from lvm_data import storage

SELECT_KEYS = ("source", "template", "task")
DEFAULT_SHARD_BYTES = 256_000_000
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
FIELDS = {"name", "output", "seed", "validation", "dedup", "shard_bytes", "total_tokens", "parts"}
PART_FIELDS = {"name", "inputs", "select", "weight", "epochs"}


class MixConfigError(ValueError):
    """A mix file that cannot be run; the message names the field and what to do."""


@dataclass(frozen=True)
class Part:
    name: str
    inputs: tuple[str, ...]
    select: dict[str, tuple[str, ...]] = field(default_factory=dict)
    weight: float | None = None
    epochs: float | None = None

    def selects(self, source: str, template: str, task: str) -> bool:
        row = {"source": source, "template": template, "task": task}
        return all(row[key] in values for key, values in self.select.items())


@dataclass(frozen=True)
class MixConfig:
    name: str
    output: str
    parts: tuple[Part, ...]
    seed: int = 0
    validation: float = 0.0
    dedup: bool = False
    shard_bytes: int = DEFAULT_SHARD_BYTES
    total_tokens: int | None = None

    @property
    def inputs(self) -> list[str]:
        """Every input output, once, in the order the parts name them."""
        return list(dict.fromkeys(uri for part in self.parts for uri in part.inputs))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "output": self.output,
            "seed": self.seed,
            "validation": self.validation,
            "dedup": self.dedup,
            "shard_bytes": self.shard_bytes,
            "total_tokens": self.total_tokens,
            "parts": [
                {
                    "name": p.name,
                    "inputs": list(p.inputs),
                    "select": {k: list(v) for k, v in p.select.items()},
                    "weight": p.weight,
                    "epochs": p.epochs,
                }
                for p in self.parts
            ],
        }


def read_mix_file(uri: str) -> MixConfig:
    try:
        text = storage.read_bytes(uri).decode()
    except FileNotFoundError as err:
        raise MixConfigError(f"{uri}: no such mix file") from err
    return parse_mix_text(text, uri)


def parse_mix_text(text: str, where: str = "mix file") -> MixConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise MixConfigError(f"{where}: not valid YAML ({err})") from err
    return parse_mix(raw, where)


def parse_mix(raw: Any, where: str = "mix file") -> MixConfig:
    if not isinstance(raw, dict):
        raise MixConfigError(f"{where}: a mix file is a mapping with name, output and parts")
    _known(raw, FIELDS, where, "")
    for key in ("name", "output", "parts"):
        if key not in raw:
            raise MixConfigError(f"{where}: {key} is missing; a mix file needs name, output and parts")
    name = _name(raw["name"], where, "name")
    parts_raw = raw["parts"]
    if not isinstance(parts_raw, list) or not parts_raw:
        raise MixConfigError(f"{where}: parts must be a non-empty list of parts")
    parts = tuple(_part(p, where, i) for i, p in enumerate(parts_raw))
    if len({p.name for p in parts}) != len(parts):
        raise MixConfigError(f"{where}: parts: part names repeat; give each part its own name")
    validation = _number(raw.get("validation", 0.0), where, "validation", low=0.0, high=1.0, high_open=True)
    shard_bytes = int(_number(raw.get("shard_bytes", DEFAULT_SHARD_BYTES), where, "shard_bytes", low=1.0))
    total = raw.get("total_tokens")
    total = None if total is None else int(_number(total, where, "total_tokens", low=1.0))
    if not isinstance(raw.get("dedup", False), bool):
        raise MixConfigError(f"{where}: dedup must be true or false")
    if not isinstance(raw.get("seed", 0), int) or raw.get("seed", 0) < 0:
        raise MixConfigError(f"{where}: seed must be a whole number >= 0")
    config = MixConfig(
        name, str(raw["output"]), parts, raw.get("seed", 0), validation, raw.get("dedup", False), shard_bytes, total
    )
    _check_sizes(config, where)
    _check_output(config, where)
    return config


def _part(raw: Any, where: str, index: int) -> Part:
    at = f"parts[{index}]"
    if not isinstance(raw, dict):
        raise MixConfigError(f"{where}: {at} must be a mapping with name, inputs and weight or epochs")
    _known(raw, PART_FIELDS, where, f"{at}.")
    if "name" not in raw or "inputs" not in raw:
        raise MixConfigError(f"{where}: {at} needs a name and inputs (job output folders)")
    inputs = raw["inputs"]
    inputs = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) and i for i in inputs):
        raise MixConfigError(f"{where}: {at}.inputs must be a job output folder or a list of them")
    select = raw.get("select") or {}
    if not isinstance(select, dict) or set(select) - set(SELECT_KEYS):
        raise MixConfigError(f"{where}: {at}.select takes {', '.join(SELECT_KEYS)} (a value or a list each)")
    select = {k: tuple(str(x) for x in (v if isinstance(v, list) else [v])) for k, v in select.items()}
    if ("weight" in raw) == ("epochs" in raw):
        raise MixConfigError(
            f"{where}: {at} needs exactly one of weight (its share of the mix's tokens) or epochs (passes over it)"
        )
    weight = _number(raw["weight"], where, f"{at}.weight", low=0.0, low_open=True) if "weight" in raw else None
    epochs = _number(raw["epochs"], where, f"{at}.epochs", low=0.0, low_open=True) if "epochs" in raw else None
    return Part(_name(raw["name"], where, f"{at}.name"), tuple(i.rstrip("/") for i in inputs), select, weight, epochs)


def _check_sizes(config: MixConfig, where: str) -> None:
    weights = [p.weight for p in config.parts if p.weight is not None]
    has_epochs = any(p.epochs is not None for p in config.parts)
    if has_epochs and weights and sum(weights) >= 1.0:
        raise MixConfigError(
            f"{where}: parts: the weights sum to {sum(weights):g} beside parts given by epochs; "
            "weights are shares of the whole mix, so they must sum to less than 1 there"
        )
    if config.total_tokens is not None and has_epochs:
        raise MixConfigError(
            f"{where}: total_tokens applies when every part is given by weight; remove it or give every part a weight"
        )


def _check_output(config: MixConfig, where: str) -> None:
    out = config.output.rstrip("/")
    for uri in config.inputs:
        if out == uri or out.startswith(uri + "/"):
            raise MixConfigError(f"{where}: output {config.output} is inside input {uri}; write the mix elsewhere")


def _known(raw: dict, allowed: set[str], where: str, prefix: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise MixConfigError(f"{where}: {prefix}{unknown[0]} is not a mix field; allowed: {', '.join(sorted(allowed))}")


def _name(value: Any, where: str, at: str) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise MixConfigError(f"{where}: {at} {value!r}: use letters, digits, _ . -")
    return value


def _number(
    value: Any,
    where: str,
    at: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MixConfigError(f"{where}: {at} must be a number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise MixConfigError(f"{where}: {at} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise MixConfigError(f"{where}: {at} must be {'<' if high_open else '<='} {high:g}, got {value!r}")
    return float(value)
