"""A site's cloud identity: typed, bounded, matched to its provider, and round-tripped by the file."""

import pytest

from cloudgw.errors import InvalidInput
from cloudgw.model import rules
from cloudgw.model.cloud import items_from_json, items_to_json, parse_items
from cloudgw.model.topology import Site, Topology
from cloudgw.model.topologyfile import dump_file, from_topology, parse_file, plan, to_topology

FILE = """version: 1
sites:
  - name: private
    provider: openstack
    openstack: {cloud: private-cloud, subnet: vm-subnet, gateway_port: 6f1c2a4e-0000-4000-8000-000000000001}
  - name: public
    provider: aws
    aws: {region: eu-west-1, subnet: subnet-0abc, gateway_eni: eni-0def, endpoint_url: "http://127.0.0.1:5000"}
networks:
  - {name: lab, cidr: 192.168.1.0/24}
"""


def test_cloud_blocks_round_trip_through_the_topology():
    spec = parse_file(FILE)
    topo = to_topology(spec)
    assert dict(topo.sites["public"].cloud)["gateway_eni"] == "eni-0def"
    again = from_topology(topo)
    assert again == spec
    assert dump_file(again)["sites"][1]["aws"]["region"] == "eu-west-1"
    assert plan(spec, again) == []
    assert items_from_json(items_to_json(topo.sites["private"].cloud)) == topo.sites["private"].cloud


def test_removing_a_cloud_block_is_an_update_to_null():
    spec = parse_file(FILE)
    without = parse_file(
        FILE.replace(
            "    aws: {region: eu-west-1, subnet: subnet-0abc, gateway_eni: eni-0def, "
            'endpoint_url: "http://127.0.0.1:5000"}\n',
            "",
        )
    )
    steps = plan(without, spec)
    assert [(s.op, s.kind, s.name, s.body) for s in steps] == [("update", "sites", "public", {"aws": None})]


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("provider: aws", "provider: openstack", "sites[1]", "an 'aws' block on a site whose provider is 'openstack'"),
        ("region: eu-west-1, ", "", "sites[1].aws.region", "Field required"),
        ("subnet: subnet-0abc", "subnet: 'subnet 0abc; rm -rf'", "sites[1].aws.subnet", "should match pattern"),
        ("region: eu-west-1", "region: eu-west-1, secret_key: x", "sites[1].aws.secret_key", "unknown field"),
        (
            'endpoint_url: "http://127.0.0.1:5000"',
            "endpoint_url: 'file:///etc/passwd'",
            "sites[1].aws.endpoint_url",
            "should match pattern",
        ),
    ],
    ids=["wrong-provider", "missing-field", "shell-in-id", "credential-field", "not-a-url"],
)
def test_bad_cloud_blocks_name_the_field(old, new, field, words):
    with pytest.raises(InvalidInput) as caught:
        parse_file(FILE.replace(old, new), "t.yaml")
    hits = [p for p in caught.value.problems if p.field.startswith(field)]
    assert hits and any(words in p.message for p in hits), caught.value.problems


def test_a_provider_change_must_bring_its_own_block():
    topo = Topology()
    aws = (("gateway_eni", "eni-1"), ("region", "eu-west-1"), ("subnet", "s"))
    topo.sites["public"] = Site("public", "aws", cloud=aws)
    problems = rules.check_site(topo, Site("public", "openstack", cloud=aws), old_name="public")
    assert [p.field for p in problems] == ["provider"] and "another provider" in problems[0].message
    problems = rules.check_site(topo, Site("public", "generic", cloud=aws), old_name="public")
    assert "drives no cloud" in problems[0].message
    assert rules.check_site(topo, Site("public", "generic"), old_name="public") == []
    assert parse_items("aws", aws) is not None and parse_items("generic", aws) is None


@pytest.mark.parametrize("region", ["0", "eu", "EU-WEST-1", "eu-west", "eu_west_1"])
def test_an_aws_region_that_is_not_a_region_name_is_refused(region):
    from pydantic import ValidationError

    from cloudgw.model.cloud import AwsCloud

    with pytest.raises(ValidationError):
        AwsCloud(region=region, subnet="subnet-0abc")
    assert AwsCloud(region="us-gov-west-1", subnet="subnet-0abc").region == "us-gov-west-1"
