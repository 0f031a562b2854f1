"""The engine's side of the job-wide image dedup index (lvm_data.curation.index): what a run builds it for, and
the reading and decoding of its candidates.

`index_inputs(run)` says what the index is built for (the output, the config hash, the pooled sources' planned
write units); `sign_unit` reads and decodes one read unit's items for `curation.index.sign_items`; `build_local`
builds the index in-process (the plain loop), pipelines/curation.py in Beam. `plan_lines` is the dry-run's
part about filters.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from lvm_data.curation import index as curation_index
from lvm_data.curation.index import IndexInputs, IndexSettings, ItemSignature, index_settings
from lvm_data.job.config import index_sources
from lvm_data.job.plan import ReadUnit
from lvm_data.job.runs import Run
from lvm_data.job.steps import Selection, SourceRuntime, decode_guarded, read_items
from lvm_data.media.contract import DecodeSettings


def index_inputs(run: Run) -> IndexInputs:
    """What the run's index is built for: every write unit of the pooled sources, as planned."""
    ctx = run.context
    settings = index_settings(ctx.job.curation)
    plans = [run.plans[name] for name in settings.sources]
    units = tuple((p.name, unit, p.digests[unit]) for p in plans for unit in p.write_units)
    return IndexInputs(ctx.out, ctx.config_hash, settings, units)


def is_current(run: Run) -> bool:
    """Whether the run's output holds a finished index for this job configuration and these inputs."""
    return curation_index.is_current(index_inputs(run))


def needs_index(run: Run) -> bool:
    """Whether the index must be built before the run tokenizes: a source is pooled, the run commits units,
    and the output holds no index for this configuration and these inputs."""
    return bool(index_sources(run.context.job)) and bool(run.seeds()) and not is_current(run)


def sign_unit(
    rt: SourceRuntime, settings: DecodeSettings, index: IndexSettings, read_unit: ReadUnit, selection: Selection
) -> Iterator[ItemSignature]:
    """Candidates of one read unit: decoded, filtered, hashed (`rt` built without index lookups)."""
    refs = read_items(rt, read_unit, selection)
    decode = partial(decode_guarded, settings=settings)
    return curation_index.sign_items(refs, read_unit.unit.id, rt.stage, decode, index)


def build_local(run: Run) -> dict:
    """Build the index in-process over every unit of the pooled sources; returns the marker written."""
    ctx, inputs = run.context, index_inputs(run)
    sigs: list[ItemSignature] = []
    for name in inputs.settings.sources:
        rt, plan = ctx.runtime(name, index=False), run.plans[name]
        selection = Selection(frozenset(plan.write_units))
        for read_unit in plan.read_units:
            sigs += sign_unit(rt, ctx.settings(), inputs.settings, read_unit, selection)
    return curation_index.write_index(inputs, sigs, "local loop")


def plan_lines(run: Run) -> list[str]:
    """Dry-run lines: each source's filters, and whether the image dedup index exists or will be built."""
    job = run.context.job
    lines = [
        f"  filters of {name}: {', '.join(entry for raw in job.source(name).filters for entry in raw)}"
        for name, f in job.curation.sources.items()
        if f.any
    ]
    inputs = index_inputs(run)
    if inputs.settings.sources:
        state = "built" if curation_index.is_current(inputs) else "to build first (decodes every item of them once)"
        lines.append(f"image dedup index over {', '.join(inputs.settings.sources)}: {state}")
    return lines
