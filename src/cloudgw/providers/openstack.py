"""OpenStack (openstacksdk): Neutron port security drops the gateway's proxy-ARP answers and the
packets it forwards unless the remote pools are in its LAN port's allowed address pairs; the
subnet's allocation pools must leave the remote pools out, or Nova hands those addresses to new VMs;
a security group cloudgw owns opens the tunnel port to the peer gateways only; the subnet's ports are
the site's endpoints.

Credentials come from clouds.yaml or the OS_* environment on the controller (openstacksdk's own
lookup); the topology names only the clouds.yaml entry.
"""

from __future__ import annotations

import base64
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import openstack
import openstack.exceptions

from cloudgw.model.addr import AddressRange
from cloudgw.model.cloud import OpenStackCloud
from cloudgw.model.rules import reserved_addresses
from cloudgw.model.topology import Topology
from cloudgw.providers import checks
from cloudgw.providers.base import Finding, Need, Observed, ProviderError, Step, VmSpec
from cloudgw.providers.checks import rule_text as _rule_text

MARK = "cloudgw:"  # the description prefix of what cloudgw creates


def _error(exc: Exception) -> ProviderError:
    if isinstance(exc, openstack.exceptions.HttpException):
        status = int(exc.status_code or 0)
        detail = exc.details or exc.message or ""
        return ProviderError(
            f"OpenStack refused ({status}): {str(detail)[:300]}",
            transient=status in (409, 429) or status >= 500,
            code=str(status),
        )
    if isinstance(exc, openstack.exceptions.ConfigException):
        return ProviderError(f"{exc}: add the cloud to the controller's clouds.yaml", code="config")
    if isinstance(exc, openstack.exceptions.SDKException):
        return ProviderError(f"OpenStack unreachable: {str(exc)[:300]}", transient=True, code=type(exc).__name__)
    raise exc


def _pools(subnet: Any) -> list[AddressRange]:
    return [AddressRange(IPv4Address(p["start"]), IPv4Address(p["end"])) for p in (subnet.allocation_pools or [])]


class OpenStack:
    name = "openstack"

    def __init__(self, site: str, cloud: OpenStackCloud, connection: Any = None) -> None:
        self.site, self.cloud = site, cloud
        self._conn = connection

    @property
    def conn(self) -> Any:
        if self._conn is None:
            try:
                self._conn = openstack.connect(cloud=self.cloud.cloud, region_name=self.cloud.region)
            except Exception as exc:
                raise _error(exc) from exc
        return self._conn

    def call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        try:
            result = getattr(self.conn.network, operation)(*args, **kwargs)
            return list(result) if operation in ("ports", "security_group_rules") else result
        except Exception as exc:
            raise _error(exc) from exc

    # observe ----------------------------------------------------------------------------------
    def observe(self, need: Need, owned: dict[str, Any]) -> Observed:
        cloud = self.cloud
        if cloud.gateway_port is None:
            raise ProviderError(
                f"site '{self.site}' names no gateway port yet",
                code="NoGateway",
                fix="launch the gateway (cloudgw gateway bootstrap GATEWAY --launch) or set openstack.gateway_port",
            )
        seen = Observed(owned=dict(owned))
        port = self.call("get_port", cloud.gateway_port)
        subnet = self.call("find_subnet", cloud.subnet, ignore_missing=False)
        wan = (
            port
            if not cloud.wan_port or cloud.wan_port == cloud.gateway_port
            else self.call("get_port", cloud.wan_port)
        )
        wan_network = self.call("get_network", wan.network_id)
        seen.subnet = IPv4Network(subnet.cidr)
        seen.reserved = reserved_addresses("openstack", seen.subnet)
        if subnet.gateway_ip:
            seen.reserved[IPv4Address(subnet.gateway_ip)] = "the subnet's router (its gateway_ip)"
        facts = seen.facts
        facts.update(
            subnet_id=subnet.id,
            port_network=port.network_id,
            subnet_network=subnet.network_id,
            port_security=bool(port.is_port_security_enabled),
            pairs={p["ip_address"] for p in (port.allowed_address_pairs or [])},
            pair_list=list(port.allowed_address_pairs or []),
            allocation_pools=_pools(subnet),
            wan_groups=list(wan.security_group_ids or []),
            wan_mtu=getattr(wan_network, "mtu", None),
            wan_network=wan_network.name or wan_network.id,
        )
        group = self.call("find_security_group", f"cloudgw-{self.site}")
        if group is not None and not str(group.description or "").startswith(MARK):
            group = None  # someone else's group of that name: never ours to change
        facts["group"] = group.id if group is not None else None
        facts["rules"] = {}
        if group is not None:
            seen.owned["security_group"] = group.id
            for rule in self.call("security_group_rules", security_group_id=group.id):
                if rule.direction == "ingress" and rule.remote_ip_prefix:
                    key = (rule.protocol or "", int(rule.port_range_min or -1), rule.remote_ip_prefix)
                    facts["rules"][key] = rule.id
        facts["standby_pairs"], facts["standby_pair_list"], facts["standby_groups"] = set(), [], []
        if cloud.standby_port is not None:
            standby = self.call("get_port", cloud.standby_port)
            facts["standby_pairs"] = {p["ip_address"] for p in (standby.allowed_address_pairs or [])}
            facts["standby_pair_list"] = list(standby.allowed_address_pairs or [])
            facts["standby_groups"] = list(standby.security_group_ids or [])
        facts["elsewhere"] = {}
        for other in self.call("ports", network_id=subnet.network_id):
            if other.id in (cloud.gateway_port, cloud.wan_port, cloud.standby_port):
                continue
            for fixed in other.fixed_ips or []:
                if fixed.get("subnet_id") != subnet.id:
                    continue
                ip = IPv4Address(fixed["ip_address"])
                facts["elsewhere"][ip] = other.id
                if str(other.device_owner or "").startswith("compute:"):
                    seen.inventory[ip] = other.mac_address
        return seen

    # plan (pure) ------------------------------------------------------------------------------
    def wanted_pairs(self, need: Need, seen: Observed) -> set[str]:
        if not seen.facts["port_security"]:
            return set()  # no port security: nothing is dropped (and Neutron refuses pairs then)
        return {
            str(c) for c in checks.covering(need.remote_ranges) if seen.subnet is not None and c.subnet_of(seen.subnet)
        }

    def wanted_pools(self, need: Need, seen: Observed) -> list[AddressRange]:
        original = [AddressRange.parse(p) for p in seen.owned.get("allocation_pools_were", [])] or seen.facts[
            "allocation_pools"
        ]
        if need.deleting:
            return original
        return [piece for pool in original for piece in pool.minus(need.remote_ranges)]

    def plan(self, need: Need, seen: Observed) -> list[Step]:
        facts, owned, cloud = seen.facts, seen.owned, self.cloud
        steps: list[Step] = []
        mine = set(owned.get("pairs", [])) & facts["pairs"]
        wanted = set() if need.deleting else self.wanted_pairs(need, seen)
        if (wanted - facts["pairs"]) or (mine - wanted):
            keep = sorted((facts["pairs"] - mine) | wanted)
            steps.append(
                Step(
                    "pairs",
                    cloud.gateway_port,
                    tuple(keep),
                    f"allowed address pairs of the gateway port: "
                    f"add {len(wanted - facts['pairs'])}, remove {len(mine - wanted)}",
                )
            )
        if cloud.standby_port is not None:  # the pair's second port answers for the same addresses
            have = facts["standby_pairs"]
            mine = set(owned.get("standby_pairs", [])) & have
            if (wanted - have) or (mine - wanted):
                steps.append(
                    Step(
                        "standby-pairs",
                        cloud.standby_port,
                        tuple(sorted((have - mine) | wanted)),
                        f"allowed address pairs of the standby gateway's port: "
                        f"add {len(wanted - have)}, remove {len(mine - wanted)}",
                    )
                )
        pools = self.wanted_pools(need, seen)
        if pools != facts["allocation_pools"]:
            steps.append(
                Step(
                    "allocation-pools",
                    facts["subnet_id"],
                    tuple(str(p) for p in pools),
                    "allocation pools of the subnet: " + ", ".join(str(p) for p in pools),
                )
            )
        rules = set() if need.deleting else checks.tunnel_rules(need)
        have = set(facts["rules"])
        if rules and not facts["group"]:
            steps.append(Step("create-group", f"cloudgw-{self.site}", (), f"create security group cloudgw-{self.site}"))
        for proto, port, cidr in sorted(have - rules):
            steps.append(
                Step("delete-rule", facts["rules"][(proto, port, cidr)], (), f"close {proto}/{port} to {cidr}")
            )
        for proto, port, cidr in sorted(rules - have):
            steps.append(Step("add-rule", "group", (proto, str(port), cidr), f"open {proto}/{port} to {cidr}"))
        wans = [(cloud.wan_port or cloud.gateway_port, facts["wan_groups"])]
        if cloud.standby_port is not None:
            wans.append((cloud.standby_port, facts["standby_groups"]))
        for wan, groups in wans:
            if not need.deleting and rules and facts["group"] not in groups:
                steps.append(Step("attach-group", wan, (), f"attach the security group to port {wan}"))
            if need.deleting and facts["group"] and facts["group"] in groups:
                steps.append(Step("detach-group", wan, (facts["group"],), f"detach {facts['group']} from {wan}"))
        if need.deleting and facts["group"]:
            steps.append(Step("delete-group", facts["group"], (), f"delete security group {facts['group']}"))
        return steps

    # checks (pure) ----------------------------------------------------------------------------
    def checks(self, need: Need, seen: Observed, topo: Topology | None = None) -> list[Finding]:
        facts, site, cloud = seen.facts, self.site, self.cloud
        found = checks.outside_subnet(need, seen)
        if facts["port_network"] != facts["subnet_network"]:
            found.append(
                Finding(
                    site,
                    "subnet",
                    "error",
                    f"port {cloud.gateway_port} is not on the network of subnet {cloud.subnet}",
                    "name the gateway's port on that subnet (openstack.gateway_port)",
                )
            )
        missing = self.wanted_pairs(need, seen) - facts["pairs"]
        if missing:
            found.append(
                Finding(
                    site,
                    "port-security",
                    "change",
                    f"port security is on for {cloud.gateway_port} and "
                    f"{len(missing)} remote pool prefixes are not in its allowed address pairs: Neutron "
                    "drops the gateway's answers for them",
                    "cloudgw adds them as allowed address pairs",
                )
            )
        overlap = [p for p in facts["allocation_pools"] if any(p.overlaps(r) for r in need.remote_ranges)]
        if overlap:
            found.append(
                Finding(
                    site,
                    "allocation-pool",
                    "change",
                    "the subnet's allocation pools "
                    + ", ".join(str(p) for p in overlap)
                    + " overlap remote pools: Nova could give a new "
                    "VM a remote address",
                    "cloudgw leaves the remote pools out of them",
                )
            )
        for ip, owner in sorted(facts["elsewhere"].items()):
            if any(ip in r for r in need.remote_ranges):
                found.append(
                    Finding(
                        site,
                        "address-in-use",
                        "error",
                        f"{ip} belongs to a remote site's pool but port {owner} holds it",
                        "give that port an address of this site's own pool",
                    )
                )
        closed = sorted(checks.tunnel_rules(need) - set(facts["rules"]))
        if closed:
            found.append(
                Finding(
                    site,
                    "tunnel-port",
                    "change",
                    "not open yet: " + ", ".join(_rule_text(r) for r in closed),
                    f"cloudgw opens them in security group cloudgw-{site} (to the peer gateways only)",
                )
            )
        if topo is not None:
            found += checks.mtu_budget(
                topo, need, facts["wan_mtu"], f"network '{facts['wan_network']}' (the gateway's WAN port)"
            )
        return found

    # launch -----------------------------------------------------------------------------------
    def launch(
        self,
        gateway: str,
        lan_ip: IPv4Address | None,
        image: str,
        size: str,
        user_data: str,
        key_name: str | None = None,
    ) -> dict[str, str]:
        """A LAN port at the gateway's address first (so its ID is known at once), then the server."""
        subnet = self.call("find_subnet", self.cloud.subnet, ignore_missing=False)
        fixed: dict[str, str] = {"subnet_id": subnet.id}
        if lan_ip is not None:
            fixed["ip_address"] = str(lan_ip)
        port = self.call(
            "create_port",
            network_id=subnet.network_id,
            name=f"cloudgw-{gateway}-lan",
            description=f"{MARK} the LAN port of gateway {gateway}",
            fixed_ips=[fixed],
        )
        try:
            server = self.conn.compute.create_server(
                name=gateway,
                image_id=image,
                flavor_id=size,
                networks=[{"port": port.id}],
                user_data=base64.b64encode(user_data.encode()).decode(),
                **({"key_name": key_name} if key_name else {}),
            )
        except Exception as exc:
            self.call("delete_port", port.id)  # nothing left behind
            raise _error(exc) from exc
        return {"instance": server.id, "interface": port.id}

    # apply ------------------------------------------------------------------------------------
    # burst VMs --------------------------------------------------------------------------------
    def _compute(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        try:
            result = getattr(self.conn.compute, operation)(*args, **kwargs)
            return list(result) if operation == "servers" else result
        except Exception as exc:
            raise _error(exc) from exc

    def launch_vm(self, vm: VmSpec) -> str:
        """A port at the chosen address first (named after the policy and the address: a port a
        crashed launch left behind is reused, not doubled), then the server on it, with the policy
        and the address in its metadata (how `list_vms` finds it again)."""
        subnet = self.call("find_subnet", self.cloud.subnet, ignore_missing=False)
        name = f"cloudgw-burst-{vm.policy}-{vm.ip}"
        port = next((p for p in self.call("ports", name=name) if not p.device_id), None)
        if port is None:
            port = self.call(
                "create_port",
                network_id=subnet.network_id,
                name=name,
                description=f"{MARK} burst VM {vm.ip} of policy {vm.policy}",
                fixed_ips=[{"subnet_id": subnet.id, "ip_address": str(vm.ip)}],
            )
        try:
            server = self.conn.compute.create_server(
                name=name,
                image_id=vm.image,
                flavor_id=vm.size,
                networks=[{"port": port.id}],
                metadata=vm.tags,
                user_data=base64.b64encode(vm.user_data.encode()).decode(),
                **({"key_name": vm.key_name} if vm.key_name else {}),
            )
        except Exception as exc:
            self.call("delete_port", port.id)  # nothing left behind
            raise _error(exc) from exc
        return str(server.id)

    def terminate_vm(self, instance: str) -> None:
        ports = [p for p in self.call("ports", device_id=instance) if (p.name or "").startswith("cloudgw-burst-")]
        self._compute("delete_server", instance, ignore_missing=True)
        for port in ports:  # the port cloudgw made for it
            self.call("delete_port", port.id, ignore_missing=True)

    def list_vms(self, policy: str) -> dict[IPv4Address, str]:
        found: dict[IPv4Address, str] = {}
        for server in self._compute("servers", details=True):
            metadata = server.metadata or {}
            if metadata.get("cloudgw:burst") == policy and metadata.get("cloudgw:ip"):
                found[IPv4Address(metadata["cloudgw:ip"])] = str(server.id)
        return found

    def apply(self, step: Step, seen: Observed) -> None:
        owned, facts = seen.owned, seen.facts
        if step.kind in ("pairs", "standby-pairs"):
            key = "pairs" if step.kind == "pairs" else "standby_pairs"
            pairs = [p for p in facts[key.removesuffix("s") + "_list"] if p["ip_address"] in step.values]
            have = {p["ip_address"] for p in pairs}
            pairs += [{"ip_address": v} for v in step.values if v not in have]
            self.call("update_port", step.target, allowed_address_pairs=pairs)
            ours = (set(owned.get(key, [])) | (set(step.values) - facts[key])) & set(step.values)
            owned[key] = sorted(ours)
            facts[key], facts[key.removesuffix("s") + "_list"] = set(step.values), pairs
        elif step.kind == "allocation-pools":
            owned.setdefault("allocation_pools_were", [str(p) for p in facts["allocation_pools"]])
            pools = [AddressRange.parse(v) for v in step.values]
            self.call(
                "update_subnet",
                step.target,
                allocation_pools=[{"start": str(p.first), "end": str(p.last)} for p in pools],
            )
            facts["allocation_pools"] = pools
        elif step.kind == "create-group":
            group = self.call(
                "create_security_group",
                name=step.target,
                description=f"{MARK} the tunnel port of site {self.site}, open to its peer gateways only",
            )
            owned["security_group"] = facts["group"] = group.id
        elif step.kind == "add-rule":
            proto, port, cidr = step.values
            rule = self.call(
                "create_security_group_rule",
                security_group_id=owned["security_group"],
                direction="ingress",
                ethertype="IPv4",
                protocol=proto,
                port_range_min=int(port),
                port_range_max=None if proto == "icmp" else int(port),  # ICMP: the type, any code
                remote_ip_prefix=cidr,
                description=f"{MARK} peer gateway",
            )
            facts["rules"][(proto, int(port), cidr)] = rule.id
        elif step.kind == "delete-rule":
            self.call("delete_security_group_rule", step.target)
        elif step.kind in ("attach-group", "detach-group"):
            key = "standby_groups" if step.target == self.cloud.standby_port else "wan_groups"
            if step.kind == "attach-group":
                groups = [*facts[key], owned["security_group"]]
            else:
                groups = [g for g in facts[key] if g != step.values[0]]
            self.call("update_port", step.target, security_groups=groups)
            facts[key] = groups
        elif step.kind == "delete-group":
            self.call("delete_security_group", step.target)
            owned.pop("security_group", None)
        else:
            raise ProviderError(f"unknown OpenStack step {step.kind}")
