"""Which provider drives a site, and the preflight of a whole topology."""

from __future__ import annotations

import os
from ipaddress import IPv4Address
from typing import Any

from cloudgw.errors import MissingDependency
from cloudgw.model.cloud import AwsCloud, OpenStackCloud, parse_items
from cloudgw.model.topology import Site, Topology
from cloudgw.providers import checks
from cloudgw.providers.base import Finding, Need, Observed, Provider, ProviderError, Step, VmSpec
from cloudgw.providers.need import need_for


class Passive:
    """A site whose cloud cloudgw does not drive: `generic` (any machine, set up by hand as in
    docs/deploy.md), `lab` (the namespace lab: its "cloud" is a Linux bridge, nothing to prepare),
    or an aws/openstack site without a cloud block. Its preflight is what needs no cloud call."""

    def __init__(self, site: str, name: str) -> None:
        self.site, self.name = site, name

    def observe(self, need: Need, owned: dict[str, Any]) -> Observed:
        return Observed(owned=dict(owned))

    def checks(self, need: Need, seen: Observed, topo: Topology | None = None) -> list[Finding]:
        return []

    def plan(self, need: Need, seen: Observed) -> list[Step]:
        return []

    def apply(self, step: Step, seen: Observed) -> None:
        raise ProviderError(f"the {self.name} provider changes nothing in a cloud")

    def launch(
        self, gateway: str, lan_ip: IPv4Address | None, image: str, size: str, user_data: str, key_name: str | None
    ) -> dict[str, str]:
        raise ProviderError(f"the {self.name} provider starts no machines")

    def launch_vm(self, vm: VmSpec) -> str:
        raise ProviderError(f"the {self.name} provider starts no machines")

    def terminate_vm(self, instance: str) -> None:
        raise ProviderError(f"the {self.name} provider has no machines to stop")

    def list_vms(self, policy: str) -> dict[IPv4Address, str]:
        return {}


def provider_for(site: Site, clients: dict[str, Any] | None = None) -> Provider:
    """The provider of a site. `clients`: injected SDK clients by site name (tests, benchmarks)."""
    parsed = parse_items(site.provider, site.cloud)
    client = (clients or {}).get(site.name)
    try:
        if isinstance(parsed, AwsCloud):
            from cloudgw.providers.aws import Aws

            return Aws(site.name, parsed, client)
        if isinstance(parsed, OpenStackCloud):
            from cloudgw.providers.openstack import OpenStack

            return OpenStack(site.name, parsed, client)
    except ModuleNotFoundError as exc:
        raise MissingDependency(
            f"the {site.provider} provider needs {exc.name}: pip install 'cloudgw[providers]'"
        ) from exc
    if site.provider == "lab" and lab_name():
        from cloudgw.providers.lab import LabCloud

        return LabCloud(site.name, lab_name())
    return Passive(site.name, site.provider)


def lab_name() -> str:
    """The lab this controller serves (CLOUDGW_LAB, set by `cloudgw lab up`): its `lab` sites can
    then start and stop VMs."""
    return os.environ.get("CLOUDGW_LAB", "")


def driven(site: Site) -> bool:
    """Whether cloudgw drives this site's cloud (it has a cloud block)."""
    return parse_items(site.provider, site.cloud) is not None


def preflight_site(topo: Topology, site: str, provider: Provider, owned: dict[str, Any]) -> list[Finding]:
    """Every trap of one site, before any change: the shared checks and, when cloudgw drives the
    site's cloud, what the cloud itself says. A cloud that cannot be read is an error finding."""
    need = need_for(topo, site)
    found = checks.reserved_collisions(topo, need, None) + checks.l2_networks(topo, site)
    if not driven(topo.sites[site]):
        if topo.sites[site].provider in ("aws", "openstack"):
            found.append(
                Finding(
                    site,
                    "cloud",
                    "warning",
                    f"site '{site}' is {topo.sites[site].provider} but has no cloud block: cloudgw changes nothing "
                    "in its cloud and cannot check it",
                    f"add an '{topo.sites[site].provider}' block (docs/providers.md), or prepare the cloud by hand "
                    "(docs/deploy.md)",
                )
            )
        return found
    found += checks.gateway_named(topo, need) + checks.hostname_peers(topo, need)
    try:
        seen = provider.observe(need, owned)
    except ProviderError as exc:
        fix = exc.fix or "check the cloud block and the controller's credentials"
        return [*found, Finding(site, "cloud", "error", str(exc), fix)]
    found = [f for f in found if f.check != "reserved"] + checks.reserved_collisions(topo, need, seen)
    found += provider.checks(need, seen, topo)
    return found


def preflight(
    topo: Topology, ledgers: dict[str, dict[str, Any]] | None = None, clients: dict[str, Any] | None = None
) -> list[Finding]:
    findings: list[Finding] = []
    for name in sorted(topo.sites):
        try:
            provider = provider_for(topo.sites[name], clients)
        except ProviderError as exc:  # the SDK refuses the cloud block itself (an endpoint it cannot use)
            fix = exc.fix or "check the site's cloud block"
            findings += [Finding(name, "cloud", "error", str(exc), fix)]
            continue
        findings += preflight_site(topo, name, provider, (ledgers or {}).get(name, {}))
    return findings
