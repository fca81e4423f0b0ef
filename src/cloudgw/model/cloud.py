"""A site's cloud identity (pure): where its cloud side lives, so a provider can drive it.

Only references are stored here (region, VPC, subnet, the gateway's interface; a clouds.yaml entry
and a port): never a credential. Credentials come from each SDK's standard places on the controller
(AWS: profile, environment, instance role; OpenStack: clouds.yaml or OS_* variables).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from cloudgw.errors import Problem
from cloudgw.model.fields import Name, StrictModel
from cloudgw.model.topology import Topology

CloudId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$")]
"""An identifier in a cloud (vpc-0a1b..., a UUID, a name): 1-128 letters, digits and ._:/@-"""

Url = Annotated[str, StringConstraints(pattern=r"^https?://[A-Za-z0-9._:\[\]/-]{1,200}$")]


AwsRegion = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")]
"""An AWS region's name: eu-west-1, us-gov-west-1, ap-southeast-3"""


class AwsCloud(StrictModel):
    """The AWS side of a site: the gateway's LAN interface (ENI) in a VPC subnet."""

    region: AwsRegion
    subnet: CloudId = Field(description="the VPC subnet the site's VMs are in (subnet-...)")
    gateway_eni: CloudId | None = Field(
        None, description="the gateway instance's ENI in that subnet (eni-...); set by `gateway bootstrap --launch`"
    )
    vpc: CloudId | None = None  # checked against the subnet's VPC when given
    wan_eni: CloudId | None = Field(None, description="the ENI the tunnel arrives on, if not gateway_eni")
    gateway: Name | None = None  # the cloudgw gateway behind gateway_eni (default: the site's only one)
    # an HA pair (docs/ha.md): the second gateway and its ENI in the same subnet; the remote addresses
    # (secondary IPs) live on the active gateway's ENI and move when the role moves
    standby: Name | None = None
    standby_eni: CloudId | None = Field(None, description="the second gateway's ENI in the subnet (eni-...)")
    profile: CloudId | None = None  # a profile in the controller's ~/.aws/config
    endpoint_url: Url | None = None  # an EC2-compatible endpoint (tests: a local moto server)

    @model_validator(mode="after")
    def _pair_named_whole(self) -> AwsCloud:
        if (self.standby is None) != (self.standby_eni is None):
            raise ValueError("an HA pair names both its second gateway (standby) and that gateway's ENI (standby_eni)")
        if self.standby is not None and self.standby == self.gateway:
            raise ValueError("standby names the same gateway as gateway: name the pair's other gateway")
        return self


class OpenStackCloud(StrictModel):
    """The OpenStack side of a site: the gateway's LAN port on a Neutron subnet."""

    cloud: CloudId = Field(description="the entry in the controller's clouds.yaml")
    subnet: CloudId = Field(description="the Neutron subnet the site's VMs are in (name or ID)")
    gateway_port: CloudId | None = Field(
        None, description="the gateway server's Neutron port on that subnet (ID); set by `gateway bootstrap --launch`"
    )
    region: CloudId | None = None
    wan_port: CloudId | None = None  # the port the tunnel arrives on, if not gateway_port
    gateway: Name | None = None
    # an HA pair (docs/ha.md): the second gateway and its port; both ports carry the allowed address
    # pairs (and the tunnel's security group), so a failover changes nothing in Neutron
    standby: Name | None = None
    standby_port: CloudId | None = None

    @model_validator(mode="after")
    def _pair_named_whole(self) -> OpenStackCloud:
        if (self.standby is None) != (self.standby_port is None):
            raise ValueError("an HA pair names both its second gateway (standby) and its port (standby_port)")
        return self


CLOUD_KINDS: dict[str, type[StrictModel]] = {"aws": AwsCloud, "openstack": OpenStackCloud}

CloudItems = tuple[tuple[str, str], ...]
"""How a Site keeps its cloud identity: sorted (field, value) pairs, hashable and comparable."""


def to_items(spec: StrictModel | None) -> CloudItems:
    if spec is None:
        return ()
    return tuple(sorted((k, str(v)) for k, v in spec.model_dump(exclude_none=True).items()))


def cloud_problems(provider: str, aws: Any, openstack: Any) -> list[Problem]:
    """A cloud block must match the site's provider, and there is at most one."""
    problems = []
    for kind, block in (("aws", aws), ("openstack", openstack)):
        if block is not None and provider != kind:
            problems.append(
                Problem(
                    kind,
                    f"an '{kind}' block on a site whose provider is '{provider}'",
                    f"set provider: {kind}, or remove the '{kind}' block",
                )
            )
    return problems


def parse_items(provider: str, items: CloudItems) -> AwsCloud | OpenStackCloud | None:
    """The typed cloud identity of a site (None: cloudgw changes nothing in its cloud)."""
    kind = CLOUD_KINDS.get(provider)
    if kind is None or not items:
        return None
    parsed = kind.model_validate(dict(items))
    assert isinstance(parsed, AwsCloud | OpenStackCloud)
    return parsed


def cloud_block(provider: str, items: CloudItems) -> dict[str, Any]:
    """The site's cloud identity as the API and the topology file write it: {"aws": {...}} or {}."""
    parsed = parse_items(provider, items)
    return {provider: parsed} if parsed is not None else {}


def items_to_json(items: CloudItems) -> str:
    return json.dumps(dict(items), sort_keys=True) if items else ""


def items_from_json(text: str | None) -> CloudItems:
    if not text:
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in json.loads(text).items()))


def cloud_gateway(topo: Topology, site: str) -> str | None:
    """The gateway behind the site's cloud identity: the one it names, else the site's only one."""
    parsed = parse_items(topo.sites[site].provider, topo.sites[site].cloud)
    named = getattr(parsed, "gateway", None)
    if named is not None:
        return named if named in topo.gateways and topo.gateways[named].site == site else None
    gateways = topo.gateways_of(site)
    return gateways[0].name if len(gateways) == 1 else None
