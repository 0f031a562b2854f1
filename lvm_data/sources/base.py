"""The source contract: plan work units, then list each unit's items.

`plan()` runs on the driver and must be cheap and deterministic (sorted listings); `read(unit)` runs
on workers. Units are the resume granularity: a unit's files are committed together.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lvm_data.items import ItemRef


@dataclass(frozen=True)
class Unit:
    """A slice of one source. `spec` is opaque to the pipeline; only the source reads it."""

    source: str
    id: str
    spec: tuple
    n_items: int | None = None  # known at planning time for file lists; None for containers

    @property
    def name(self) -> str:
        return f"{self.source}/{self.id}"


class Source(ABC):
    """A named input of a job. Options come from the job file's `input` block."""

    format: str

    def __init__(self, name: str, options: dict[str, Any]):
        self.name = name
        self.options = options

    @abstractmethod
    def plan(self) -> list[Unit]:
        """Work units, in a deterministic order."""

    @abstractmethod
    def read(self, unit: Unit) -> Iterator[ItemRef]:
        """The unit's items. Unreadable members still yield an ItemRef (their failure is decoded later)."""

    def files(self, unit: Unit) -> list[str]:
        """The files (or folders) `unit` reads, named in its spec. Their size and modification time enter the unit's
        digest (lvm_data.job.plan), so a file changed in place after its unit committed is noticed on resume. None
        by default: the digest then covers the spec alone."""
        return []
