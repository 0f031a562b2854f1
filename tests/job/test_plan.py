import os

import pytest

from lvm_data import storage
from lvm_data.job.plan import (
    ReadUnit,
    ResumeError,
    apply_limit,
    bucket_of,
    check_sources,
    file_stamps,
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
        return [
            Unit(self.name, "u0", ("a", "b", "c"), 3),
            Unit(self.name, "u1", ("d", "e"), 2),
            Unit(self.name, "t0", ("x.tar",), None),
        ]

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
    assert [(r.unit.id, r.max_items) for r in apply_limit("s", units, None)] == [
        ("u0", None),
        ("u1", None),
        ("t0", None),
    ]
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


class OnDisk(Source):
    """Units of real files: files() names them, so their sizes and times enter the digests."""

    format = "ondisk"

    def plan(self):
        files = sorted(str(p) for p in self.options["root"].iterdir())
        return [Unit(self.name, f"u{i}", (f,), 1) for i, f in enumerate(files)]

    def read(self, unit):
        return iter(())

    def files(self, unit):
        return list(unit.spec)


def test_a_file_changed_in_place_changes_only_its_units_digest(tmp_path):
    for name in "ab":
        (tmp_path / name).write_bytes(b"1234")
    before = plan_source("s", OnDisk("s", {"root": tmp_path}), Single(), limit=None, shard_size=1)
    (tmp_path / "b").write_bytes(b"12345")
    after = plan_source("s", OnDisk("s", {"root": tmp_path}), Single(), limit=None, shard_size=1)
    assert before.digests["u0"] == after.digests["u0"] and before.digests["u1"] != after.digests["u1"]
    assert before.spec_digests == after.spec_digests  # paths only: what outputs before the stamps hold
    with pytest.raises(ResumeError, match="size or modification time changed since"):
        with_committed(after, [marker("u1", before.digests["u1"])], "h", "OUT")
    st = (tmp_path / "a").stat()
    os.utime(tmp_path / "a", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: same size, another time
    touched = plan_source("s", OnDisk("s", {"root": tmp_path}), Single(), limit=None, shard_size=1)
    assert touched.digests["u0"] != after.digests["u0"]


def test_markers_with_a_spec_only_digest_are_compared_by_spec(tmp_path):
    (tmp_path / "a").write_bytes(b"1234")
    plan = plan_source("s", OnDisk("s", {"root": tmp_path}), Single(), limit=None, shard_size=1)
    old = marker("u0", unit_digest(plan.read_units[0]))  # written before digests held sizes and times
    assert with_committed(plan, [old], "h", "OUT").committed == {"u0"}
    assert unit_digest(plan.read_units[0]) != plan.digests["u0"]


def test_a_grouping_source_refuses_every_bucket_when_a_file_changed(tmp_path):
    for name in "abc":
        (tmp_path / name).write_bytes(b"x")
    before = plan_source("s", OnDisk("s", {"root": tmp_path}), ByFirstLetter(), limit=None, shard_size=2)
    (tmp_path / "c").write_bytes(b"xy")
    after = plan_source("s", OnDisk("s", {"root": tmp_path}), ByFirstLetter(), limit=None, shard_size=2)
    assert all(before.digests[b] != after.digests[b] for b in after.write_units)
    assert before.spec_digests == after.spec_digests


def test_file_stamps_of_local_remote_and_missing_files(tmp_path):
    (tmp_path / "a").write_bytes(b"abc")
    storage.write_bytes("memory://stamps/x.bin", b"12345")
    stamps = file_stamps([str(tmp_path / "a"), str(tmp_path / "gone"), "memory://stamps/x.bin", "memory://stamps/gone"])
    assert stamps[str(tmp_path / "a")] == (3, (tmp_path / "a").stat().st_mtime_ns)
    assert stamps[str(tmp_path / "gone")] == (None, None) and stamps["memory://stamps/gone"] == (None, None)
    assert stamps["memory://stamps/x.bin"][0] == 5


def test_markers_of_a_source_the_job_no_longer_has_are_refused():
    check_sources([{"source": "new"}], ["new"], "OUT")
    with pytest.raises(ResumeError) as err:
        check_sources([{"source": "old"}, {"source": "old"}, {"source": "new"}], ["new"], "OUT")
    assert str(err.value) == (
        "OUT holds committed units of source 'old' (2 units), which the job file no longer has "
        "(its sources: new); use a new output folder, or give the source its old name again in "
        "the job file"
    )
