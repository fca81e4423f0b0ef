import pytest

from cloudgw.errors import InvalidInput
from cloudgw.model.textio import line_of
from cloudgw.model.topologyfile import (
    TopologyFile,
    dump_file,
    from_topology,
    parse_file,
    plan,
    to_topology,
)

SEED = """version: 1
sites:
  - {name: private, provider: openstack}
  - {name: public, provider: aws}
networks:
  - {name: lab, cidr: 192.168.1.0/24}
pools:
  - {network: lab, site: private, range: 192.168.1.1-192.168.1.10}
  - {network: lab, site: public, range: 192.168.1.11-192.168.1.20}
gateways:
  - {name: public-gw, site: public, endpoint: "203.0.113.20:51820", lan_addresses: [192.168.1.253]}
connections:
  - {network: lab, site_a: private, site_b: public}
"""


def test_parse_and_round_trip():
    spec = parse_file(SEED)
    assert spec.pools[0].key == "private-lab" and spec.connections[0].key == "private-public-lab"
    again = from_topology(to_topology(spec))
    assert again == spec
    assert TopologyFile.model_validate(dump_file(again)) == spec


def test_plan_from_nothing_creates_in_dependency_order():
    steps = plan(parse_file(SEED), TopologyFile())
    assert [s.op for s in steps] == ["create"] * 7
    assert [s.kind for s in steps] == ["sites", "sites", "networks", "pools", "pools", "gateways", "connections"]
    assert steps[3].body["name"] == "private-lab"


def test_plan_to_nothing_deletes_in_reverse_order():
    steps = plan(TopologyFile(), parse_file(SEED))
    assert [s.kind for s in steps] == ["connections", "gateways", "pools", "pools", "networks", "sites", "sites"]


def test_same_file_plans_nothing():
    assert plan(parse_file(SEED), parse_file(SEED)) == []


def test_update_lists_only_changed_fields():
    live = parse_file(SEED)
    desired = parse_file(SEED.replace("192.168.1.11-192.168.1.20", "192.168.1.11-192.168.1.40"))
    [step] = plan(desired, live)
    assert (step.op, step.kind, step.name) == ("update", "pools", "public-lab")
    assert step.body == {"range": "192.168.1.11-192.168.1.40"}
    assert step.before == {"range": "192.168.1.11-192.168.1.20"}
    assert "192.168.1.11-192.168.1.20' -> '192.168.1.11-192.168.1.40" in step.describe()


def test_shrinking_pool_is_updated_before_the_growing_one():
    live = parse_file(SEED)
    moved = SEED.replace("192.168.1.1-192.168.1.10", "192.168.1.1-192.168.1.14").replace(
        "192.168.1.11-192.168.1.20", "192.168.1.15-192.168.1.20"
    )
    steps = plan(parse_file(moved), live)
    assert [s.name for s in steps] == ["public-lab", "private-lab"]


def test_changing_a_pools_site_is_delete_and_create():
    live = parse_file(SEED)
    desired = parse_file(
        SEED.replace(
            "{network: lab, site: public, range", "{name: public-lab, network: lab, site: private, range"
        ).replace("  - {network: lab, site: private, range: 192.168.1.1-192.168.1.10}\n", "")
    )
    ops = [(s.op, s.name) for s in plan(desired, live)]
    assert ("delete", "public-lab") in ops and ("create", "public-lab") in ops


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [
        (SEED.replace("range: 192.168.1.11-192.168.1.20", "range: 192.168.1.9-192.168.1.20"), "pools[1].range", 9),
        (SEED.replace("site_b: public", "site_b: mars"), "connections[0].site_b", 13),
        (SEED.replace("provider: aws", "provider: azure"), "sites[1].provider", 4),
        (
            SEED.replace("range: 192.168.1.11-192.168.1.20", "range: 192.168.1.2-192.168.1.3, site: public"),
            "pools[1]",
            9,
        ),
    ],
    ids=["overlap", "unknown-site", "bad-provider", "duplicate-key"],
)
def test_problems_name_field_and_line(text, field, line):
    with pytest.raises(InvalidInput) as caught:
        parse_file(text, "t.yaml")
    located = [p.field for p in caught.value.problems]
    assert any(f.startswith(field) and f"(line {line})" in f for f in located), located


def test_malformed_yaml_names_line_and_column():
    with pytest.raises(InvalidInput) as caught:
        parse_file("sites:\n  - name: a\n   provider: aws\n", "t.yaml")
    assert caught.value.problems[0].field == "t.yaml line 3, column 4"


def test_line_of_walks_mappings_and_sequences():
    assert line_of(SEED, "gateways[0].endpoint") == 11
    assert line_of(SEED, "networks[0]") == 6
    assert line_of(SEED, "nothing.here") == 1


HA_PAIR = """version: 1
sites:
  - name: private
    provider: openstack
    ha: {interval_ms: 100, dead_ms: 600, failback: true, addresses: [192.168.1.250]}
  - {name: public, provider: aws}
networks:
  - {name: lab, cidr: 192.168.1.0/24}
pools:
  - {network: lab, site: private, range: 192.168.1.1-192.168.1.10}
gateways:
  - {name: private-gw, site: private, lan_addresses: [192.168.1.254], priority: 200}
  - {name: private-gw2, site: private, lan_addresses: [192.168.1.252]}
"""


def test_an_ha_pair_round_trips_and_a_second_gateway_without_a_lan_address_is_refused():
    spec = parse_file(HA_PAIR)
    topo = to_topology(spec)
    assert topo.sites["private"].ha.dead_ms == 600 and topo.gateways["private-gw"].priority == 200
    assert from_topology(topo) == spec
    assert dump_file(spec)["sites"][0]["ha"]["addresses"] == ["192.168.1.250"]
    with pytest.raises(InvalidInput) as caught:
        parse_file(HA_PAIR.replace("lan_addresses: [192.168.1.252]", "endpoint: 203.0.113.11:51820"))
    assert [p.field for p in caught.value.problems] == ["gateways[1].lan_addresses (line 13)"]
    with pytest.raises(InvalidInput) as caught:
        parse_file(HA_PAIR.replace("addresses: [192.168.1.250]", "addresses: [192.168.1.5]"))
    # sites come before pools in a file: the pool that would cover the virtual address is refused
    assert caught.value.problems[0].field.startswith("pools[0].range") and "virtual" in caught.value.problems[0].message
