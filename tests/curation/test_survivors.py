import random

from lvm_data.curation.survivors import Match, exact_losers, group_exact, near_losers


def test_exact_group_keeps_the_first_id():
    ids = [("b", "x"), ("a", "z"), ("a", "y")]
    assert exact_losers(ids) == [Match(("a", "z"), ("a", "y")), Match(("b", "x"), ("a", "y"))]
    groups = group_exact([("d1", ("s", "2")), ("d2", ("s", "3")), ("d1", ("s", "1"))])
    assert groups == [Match(("s", "2"), ("s", "1"))]


def test_near_rule_removes_every_id_with_an_earlier_neighbour_in_any_order():
    a, b, c, d = ("s", "a"), ("s", "b"), ("s", "c"), ("t", "d")
    edges = [(a, b, 3), (b, c, 2), (c, d, 5), (a, c, 1)]
    expected = [Match(b, a, 3), Match(c, a, 1), Match(d, c, 5)]
    for seed in range(5):
        shuffled = [
            (y, x, w) if random.Random(seed + i).random() < 0.5 else (x, y, w) for i, (x, y, w) in enumerate(edges)
        ]
        random.Random(seed).shuffle(shuffled)
        assert near_losers(shuffled) == expected


def test_chain_removes_more_than_greedy_and_the_first_survives():
    a, b, c = ("s", "a"), ("s", "b"), ("s", "c")
    removed = {m.loser for m in near_losers([(a, b, 4), (b, c, 4)])}
    assert removed == {b, c}  # c's only neighbour b is itself removed: documented
    assert a not in removed
