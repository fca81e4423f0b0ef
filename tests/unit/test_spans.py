"""The pool index used by the overlap check (model.spans): the same answer as comparing with every
pool, for disjoint networks (bisection) and overlapping ones (the scan it falls back to)."""

from __future__ import annotations

import random

from cloudgw.model.addr import AddressRange
from cloudgw.model.spans import PoolSpans
from cloudgw.model.topology import Pool


def pool(name: str, first: int, last: int, network: str = "n") -> Pool:
    return Pool(
        name, network, "a", AddressRange.parse(f"10.0.{first // 256}.{first % 256}-10.0.{last // 256}.{last % 256}")
    )


def brute(pools: list[Pool], network: str, first: int, last: int) -> set[str]:
    return {p.name for p in pools if p.network == network and int(p.range.first) <= last and first <= int(p.range.last)}


def base(offset: int) -> int:
    return int(AddressRange.parse("10.0.0.0").first) + offset


def random_pools(rng: random.Random, count: int, disjoint: bool) -> list[Pool]:
    pools, at = [], 0
    for i in range(count):
        if disjoint:
            at += rng.randint(0, 5)
            width = rng.randint(0, 7)
            start, at = at, at + width + 1
            end = start + width
        else:
            start = rng.randint(0, 600)
            end = start + rng.randint(0, 40)
        pools.append(pool(f"p{i}", start, end, network=rng.choice(["n", "m"])))
    rng.shuffle(pools)
    return pools


def test_overlapping_answers_as_the_scan_does_for_disjoint_and_overlapping_pools():
    rng = random.Random(17)
    for disjoint in (True, False):
        pools = random_pools(rng, 300, disjoint)
        spans = PoolSpans(pools)
        assert spans.count == 300
        for _ in range(500):
            first = base(rng.randint(-5, 4000))
            last = first + rng.randint(0, 30)
            network = rng.choice(["n", "m", "absent"])
            found = {p.name for p in spans.overlapping(network, first, last)}
            assert found == brute(pools, network, first, last), (disjoint, first, last)


def test_pools_added_one_by_one_answer_as_those_built_at_once():
    rng = random.Random(3)
    for disjoint in (True, False):
        pools = random_pools(rng, 200, disjoint)
        grown = PoolSpans()
        for p in pools:
            grown.add(p)
        whole = PoolSpans(pools)
        for _ in range(300):
            first = base(rng.randint(0, 700))
            last = first + rng.randint(0, 20)
            expected = brute(pools, "n", first, last)
            assert {p.name for p in grown.overlapping("n", first, last)} == expected
            assert {p.name for p in whole.overlapping("n", first, last)} == expected


def test_an_overlap_added_later_is_still_found():
    spans = PoolSpans([pool("a", 0, 15), pool("b", 32, 47)])
    spans.add(pool("c", 10, 40))  # overlaps both: the network is answered by its scan from now on
    assert {p.name for p in spans.overlapping("n", base(12), base(12))} == {"a", "c"}
    assert {p.name for p in spans.overlapping("n", base(45), base(50))} == {"b"}


def test_a_copy_adds_without_changing_its_source():
    source = PoolSpans([pool("a", 0, 15)])
    copy = source.copy()
    copy.add(pool("b", 16, 31))
    copy.add(pool("x", 0, 3, network="m"))
    assert source.count == 1 and copy.count == 3
    assert source.overlapping("n", base(20), base(20)) == []
    assert source.overlapping("m", base(0), base(0)) == []
    assert [p.name for p in copy.overlapping("n", base(20), base(20))] == ["b"]
    assert [p.name for p in copy.overlapping("n", base(0), base(31))] == ["a", "b"]
