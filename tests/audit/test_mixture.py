import math

import pytest

from lvm_data.audit.mixture import TargetError, bundled_targets, compare, load_target, parse_target


def test_bundled_uvdv1_target_loads_with_the_paper_shares():
    assert "uvdv1" in bundled_targets()
    target = load_target("uvdv1")
    shares = {e.name: e.share for e in target.entries}
    assert math.isclose(sum(shares.values()), 1.0)
    assert math.isclose(shares["unlabelled_images"], 88.5 / 100.01)
    assert target.tolerance == 0.1 and "laion*" in target.entries[0].patterns


def test_shares_are_compared_per_entry_with_status_and_weight():
    target = parse_target(
        {"tolerance": 0.1, "shares": {"images": {"share": 6, "sources": ["laion*", "cc*"]}, "video": 3, "objects": 1}},
        "mix.yaml",
    )
    rows = {r.name: r for r in compare(target, {"laion_a": 500, "cc3m": 100, "video": 200, "extra": 200})}
    assert rows["images"].sources == ["cc3m", "laion_a"] and rows["images"].tokens == 600
    assert math.isclose(rows["images"].actual, 0.6) and rows["images"].status == "on plan"
    assert rows["video"].status == "under" and math.isclose(rows["video"].weight, 0.3 / 0.2)
    assert rows["objects"].status == "missing" and rows["objects"].weight is None
    assert rows["extra"].status == "unplanned" and rows["extra"].target == 0 and rows["extra"].weight == 0
    over = compare(target, {"laion": 1, "video": 9, "objects": 1})
    assert [r.status for r in over] == ["under", "over", "on plan"]


def test_a_source_counts_for_the_first_entry_that_matches():
    target = parse_target(
        {"shares": {"a": {"share": 1, "sources": ["x*"]}, "b": {"share": 1, "sources": ["*"]}}}, "t.yaml"
    )
    assert [r.sources for r in compare(target, {"x1": 1, "y": 1})] == [["x1"], ["y"]]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "needs a mapping `shares:`"),
        ({"shares": {"a": -1}}, r"shares.a.share must be a number >= 0"),
        ({"shares": {"a": "lots"}}, r"shares.a.share must be a number"),
        ({"shares": {"a": {"share": 1, "sources": "laion"}}}, r"shares.a.sources must be a list"),
        ({"shares": {"a": 0}}, "sum to 0"),
        ({"shares": {"a": 1}, "tolerance": 2}, "tolerance must be a number in"),
    ],
)
def test_bad_target_files_name_the_file_and_field(document, message):
    with pytest.raises(TargetError, match=f"mix.yaml: .*{message}"):
        parse_target(document, "mix.yaml")


def test_target_files_are_read_from_paths(tmp_path):
    path = tmp_path / "mix.yaml"
    path.write_text("name: mine\nshares:\n  laion: 3\n  coco: 1\n")
    target = load_target(str(path))
    assert target.name == "mine" and [(e.name, e.share) for e in target.entries] == [("laion", 0.75), ("coco", 0.25)]
    path.write_text("shares: [unclosed")
    with pytest.raises(TargetError, match="not valid YAML"):
        load_target(str(path))
    with pytest.raises(TargetError, match="cannot read the target mixture"):
        load_target(str(tmp_path / "missing.yaml"))
