import pytest

from lvm_data.job.plan import (
    ReadUnit,
    ResumeError,
    apply_limit,
    bucket_of,
    is_grouping,
    plan_source,
    unit_digest,
    with_committed,
)
from lvm_data.sentences.base import BuildResult, Template
from lvm_data.sentences.single import Single
from lvm_data.sources.base import Source, Unit


class Listed(Source):
    format = "listed"

    def plan(self):
        return [Unit(self.name, "u0", ("a", "b", "c"), 3), Unit(self.name, "u1", ("d", "e"), 2),
                Unit(self.name, "t0", ("x.tar",), None)]

    def read(self, unit):
        return iter(())


class ByFirstLetter(Template):
    name = "by_letter"

    def group_key(self, ref):
        return ref.key[0]

    def build(self, items):
        return BuildResult([])


def test_limit_truncates_known_units_and_caps_containers():
    units = Listed("s", {}).plan()
    assert [(r.unit.id, r.max_items) for r in apply_limit("s", units, None)] == [("u0", None), ("u1", None),
                                                                                  ("t0", None)]
    assert [(r.unit.id, r.max_items) for r in apply_limit("s", units, 4)] == [("u0", None), ("u1", 1)]
    assert [(r.unit.id, r.max_items) for r in apply_limit("s", units, 7)] == [("u0", None), ("u1", None), ("t0", 2)]


def test_digest_depends_on_members_and_limit():
    unit = Unit("s", "u0", ("a", "b"), 2)
    assert unit_digest(ReadUnit("s", unit)) == unit_digest(ReadUnit("s", Unit("s", "u0", ("a", "b"), 2)))
    assert unit_digest(ReadUnit("s", unit)) != unit_digest(ReadUnit("s", Unit("s", "u0", ("a", "c"), 2)))
    assert unit_digest(ReadUnit("s", unit)) != unit_digest(ReadUnit("s", unit, 1))


def test_plain_template_writes_its_read_units():
    plan = plan_source("s", Listed("s", {}), Single(), limit=None, shard_size=10)
    assert not plan.grouped and plan.write_units == ("u0", "u1", "t0")
    assert plan.known_items == 5 and plan.unknown_units == 1 and plan.estimated_items(10) == 15


def test_grouping_template_writes_hash_buckets_sized_from_the_plan():
    assert is_grouping(ByFirstLetter()) and not is_grouping(Single())
    plan = plan_source("s", Listed("s", {}), ByFirstLetter(), limit=None, shard_size=4)
    assert plan.grouped and plan.n_buckets == 3  # ceil((5 known + 4 estimated for the tar) / 4)
    assert plan.write_units == ("g000000", "g000001", "g000002")
    assert len(set(plan.digests.values())) == 1
    assert bucket_of("cats", 3) == bucket_of("cats", 3) and bucket_of("cats", 3) in plan.write_units


def marker(unit, digest, config_hash="h"):
    return {"source": "s", "unit": unit, "spec_digest": digest, "config_hash": config_hash}


def test_committed_units_are_skipped_and_mismatches_refused():
    plan = plan_source("s", Listed("s", {}), Single(), limit=None, shard_size=10)
    done = with_committed(plan, [marker("u1", plan.digests["u1"])], "h", "OUT")
    assert done.pending == ("u0", "t0") and done.committed == {"u1"}
    with pytest.raises(ResumeError, match="another job configuration"):
        with_committed(plan, [marker("u1", plan.digests["u1"], "other")], "h", "OUT")
    with pytest.raises(ResumeError, match="from different inputs.*new output folder"):
        with_committed(plan, [marker("u1", "stale")], "h", "OUT")
    with pytest.raises(ResumeError, match="does not plan it"):
        with_committed(plan, [marker("u9", "x")], "h", "OUT")
