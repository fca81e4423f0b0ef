"""AWS (boto3): the VPC delivers a packet only to an interface that owns its address, so the gateway's
LAN ENI holds every remote VM's address as a secondary private IP, with its source/destination check
off; a security group cloudgw owns opens the tunnel port to the peer gateways only; the subnet's
interfaces are the site's endpoints (a VM is in the mapping once AWS gave it its address).

Never relies on what AWS refuses but a mock may accept: reserved addresses, addresses outside the
subnet, more secondary IPs than the instance type allows, reassigning an address another ENI holds
(no AllowReassignment: that would steal a VM's address). Credentials come from boto3's own chain
(profile, AWS_* environment, instance role) on the controller, and never from the topology.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from cloudgw.model.cloud import AwsCloud
from cloudgw.model.rules import reserved_addresses
from cloudgw.model.topology import Topology
from cloudgw.providers import checks
from cloudgw.providers.base import Finding, Need, Observed, ProviderError, Step, VmSpec
from cloudgw.providers.checks import rule_text as _rule_text

TAG = "cloudgw:site"
INTERNET_MTU = 1500  # what leaves a VPC through an Internet gateway (9001 only inside the VPC)
TRANSIENT = {"Throttling", "RequestLimitExceeded", "ServiceUnavailable", "InternalError", "Unavailable"}
# IPv4 addresses per ENI (AWS documentation, "IP addresses per network interface per instance type");
# the primary counts. Used to suggest an instance type that fits; the limit itself is read from
# DescribeInstanceTypes.
LADDER = (
    ("t3.micro", 2),
    ("t3.small", 4),
    ("t3.medium", 6),
    ("m5.large", 10),
    ("t3.large", 12),
    ("m5.xlarge", 15),
    ("m5.4xlarge", 30),
    ("m5.16xlarge", 50),
)
CHUNK = 50  # addresses per Assign/Unassign call


def _error(exc: Exception) -> ProviderError:
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "")) or "Unknown"
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return ProviderError(
            f"AWS refused {exc.operation_name}: {code}: {error.get('Message', '')}",
            transient=code in TRANSIENT or status >= 500,
            code=code,
        )
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return ProviderError(
            "no AWS credentials on the controller: set a profile (aws.profile), the AWS_* variables, or use an "
            "instance role",
            code="NoCredentials",
        )
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        return ProviderError(f"{exc}: add it to the controller's ~/.aws/config", code="ProfileNotFound")
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return ProviderError(f"AWS unreachable: {exc}", transient=True, code=type(exc).__name__)
    raise exc


def suggest_instance_type(addresses: int) -> str:
    fits = next((name for name, limit in LADDER if limit >= addresses), None)
    if fits is None:
        return "split the remote addresses over several gateways (or use /28 prefix delegation by hand)"
    return f"use an instance type with at least {addresses} addresses per interface, e.g. {fits}"


class Aws:
    name = "aws"

    def __init__(self, site: str, cloud: AwsCloud, client: Any = None) -> None:
        self.site, self.cloud = site, cloud
        if client is None:
            session = boto3.session.Session(profile_name=cloud.profile, region_name=cloud.region)
            config = Config(retries={"mode": "adaptive", "max_attempts": 6}, connect_timeout=5, read_timeout=30)
            try:
                client = session.client("ec2", endpoint_url=cloud.endpoint_url, config=config)
            except Exception as exc:  # botocore refuses a region or endpoint it cannot use: say so
                raise _error(exc) from exc
        self.ec2 = client

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = getattr(self.ec2, operation)(**kwargs)
        except Exception as exc:  # turned into a ProviderError, or re-raised when it is a bug
            raise _error(exc) from exc
        return result

    def pages(self, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        try:
            for page in self.ec2.get_paginator(operation).paginate(**kwargs):
                yield from page.get(key, [])
        except Exception as exc:
            raise _error(exc) from exc

    # observe ----------------------------------------------------------------------------------
    def observe(self, need: Need, owned: dict[str, Any]) -> Observed:
        cloud = self.cloud
        if cloud.gateway_eni is None:
            raise ProviderError(
                f"site '{self.site}' names no gateway ENI yet",
                code="NoGateway",
                fix="launch the gateway (cloudgw gateway bootstrap GATEWAY --launch) or set aws.gateway_eni",
            )
        seen = Observed(owned=dict(owned))
        lan_id, other_id = self._lan_enis(need)
        eni = self.call("describe_network_interfaces", NetworkInterfaceIds=[lan_id])["NetworkInterfaces"][0]
        subnet = self.call("describe_subnets", SubnetIds=[cloud.subnet])["Subnets"][0]
        seen.subnet = IPv4Network(subnet["CidrBlock"])
        seen.reserved = reserved_addresses("aws", seen.subnet)
        primary = next(IPv4Address(a["PrivateIpAddress"]) for a in eni["PrivateIpAddresses"] if a.get("Primary"))
        facts = seen.facts
        facts.update(
            lan_eni=lan_id,
            vpc=subnet["VpcId"],
            eni_subnet=eni["SubnetId"],
            primary=primary,
            secondary={IPv4Address(a["PrivateIpAddress"]) for a in eni["PrivateIpAddresses"] if not a.get("Primary")},
            source_dest_check=bool(eni.get("SourceDestCheck", True)),
            tagged=any(t["Key"] == TAG and t["Value"] == self.site for t in eni.get("TagSet", [])),
            instance=eni.get("Attachment", {}).get("InstanceId"),
        )
        # the pair's other ENI: it must hold none of the remote addresses (they move, never copy)
        facts["other_eni"], facts["other_secondary"] = other_id, set()
        described = {lan_id: eni}
        if other_id is not None:
            other = self.call("describe_network_interfaces", NetworkInterfaceIds=[other_id])["NetworkInterfaces"][0]
            described[other_id] = other
            facts["other_secondary"] = {
                IPv4Address(a["PrivateIpAddress"]) for a in other["PrivateIpAddresses"] if not a.get("Primary")
            }
        facts["wan_groups"] = {}
        for wan_id in self._wans():
            if wan_id not in described:
                described[wan_id] = self.call("describe_network_interfaces", NetworkInterfaceIds=[wan_id])[
                    "NetworkInterfaces"
                ][0]
            facts["wan_groups"][wan_id] = [g["GroupId"] for g in described[wan_id].get("Groups", [])]
        facts["instance_type"], facts["ips_per_eni"] = None, None
        if facts["instance"]:
            reservations = self.call("describe_instances", InstanceIds=[facts["instance"]])["Reservations"]
            kind = reservations[0]["Instances"][0]["InstanceType"]
            types = self.call("describe_instance_types", InstanceTypes=[kind])["InstanceTypes"]
            facts["instance_type"] = kind
            facts["ips_per_eni"] = int(types[0]["NetworkInfo"]["Ipv4AddressesPerInterface"]) if types else None
        groups = self.call(
            "describe_security_groups",
            Filters=[{"Name": f"tag:{TAG}", "Values": [self.site]}, {"Name": "vpc-id", "Values": [subnet["VpcId"]]}],
        )["SecurityGroups"]
        facts["group"] = groups[0]["GroupId"] if groups else None
        facts["ingress"] = set(self._ingress(groups[0])) if groups else set()
        if facts["group"]:
            seen.owned["security_group"] = facts["group"]
        acls = self.call("describe_network_acls", Filters=[{"Name": "association.subnet-id", "Values": [cloud.subnet]}])
        facts["acl_entries"] = [e for acl in acls["NetworkAcls"] for e in acl.get("Entries", []) if not e.get("Egress")]
        facts["elsewhere"] = {}
        for other in self.pages(
            "describe_network_interfaces",
            "NetworkInterfaces",
            Filters=[{"Name": "subnet-id", "Values": [cloud.subnet]}],
        ):
            if other["NetworkInterfaceId"] in described:
                continue
            for address in other.get("PrivateIpAddresses", []):
                ip = IPv4Address(address["PrivateIpAddress"])
                seen.inventory[ip] = other.get("MacAddress")
                facts["elsewhere"][ip] = other["NetworkInterfaceId"]
        return seen

    @staticmethod
    def _ingress(group: dict[str, Any]) -> Iterator[tuple[str, int, str]]:
        for perm in group.get("IpPermissions", []):
            for ip_range in perm.get("IpRanges", []):
                yield perm.get("IpProtocol", ""), int(perm.get("FromPort", -1)), ip_range["CidrIp"]

    # plan (pure) ------------------------------------------------------------------------------
    def wanted_addresses(self, need: Need, seen: Observed) -> set[IPv4Address]:
        facts = seen.facts
        return {
            a
            for a in need.remote_addresses
            if seen.subnet is not None and a in seen.subnet and a not in seen.reserved and a not in facts["elsewhere"]
        }

    def capacity(self, seen: Observed) -> int | None:
        limit = seen.facts.get("ips_per_eni")
        return None if limit is None else max(0, limit - 1)  # the primary address takes one

    def _lan_enis(self, need: Need) -> tuple[str, str | None]:
        """(the ENI that holds the remote addresses now, the pair's other ENI or None)."""
        cloud = self.cloud
        assert cloud.gateway_eni is not None
        if cloud.standby_eni is None:
            return cloud.gateway_eni, None
        if cloud.standby is not None and need.active == cloud.standby:
            return cloud.standby_eni, cloud.gateway_eni
        return cloud.gateway_eni, cloud.standby_eni

    def _wans(self) -> list[str]:
        """The ENIs the tunnels arrive on: the gateway's, and its partner's in a pair."""
        wans = [self._wan()]
        if self.cloud.standby_eni is not None and self.cloud.standby_eni not in wans:
            wans.append(self.cloud.standby_eni)
        return wans

    def plan(self, need: Need, seen: Observed) -> list[Step]:
        facts, owned = seen.facts, seen.owned
        eni: str = facts["lan_eni"]
        present: set[IPv4Address] = facts["secondary"]
        ours = {IPv4Address(a) for a in owned.get("secondary", [])}
        mine = ours & present
        steps: list[Step] = []
        other: str | None = facts["other_eni"]
        stale = sorted(ours & facts["other_secondary"])
        if other is not None and stale:
            # the role moved: release them from the other ENI first, so no address is ever on two
            steps += _chunks("unassign", other, stale, "release {n} secondary IPs from " + other + " (role moved)")
        if need.deleting:
            steps += _chunks("unassign", eni, sorted(mine), "release {n} secondary IPs from " + eni)
            if owned.get("source_dest_check_was") and not facts["source_dest_check"]:
                steps.append(
                    Step("source-dest-check", eni, ("on",), f"turn the source/destination check of {eni} back on")
                )
            if facts["group"]:
                for wan, groups in facts["wan_groups"].items():
                    if facts["group"] in groups:
                        steps.append(Step("detach-group", wan, (facts["group"],), f"detach {facts['group']}"))
                steps.append(Step("delete-group", facts["group"], (), f"delete security group {facts['group']}"))
            if facts["tagged"]:
                steps.append(Step("untag", eni, (), f"remove the {TAG} tag from {eni}"))
            return steps
        if not facts["tagged"]:
            steps.append(Step("tag", eni, (), f"tag {eni} {TAG}={self.site}"))
        if facts["source_dest_check"]:
            steps.append(Step("source-dest-check", eni, ("off",), f"turn the source/destination check of {eni} off"))
        wanted = self.wanted_addresses(need, seen)
        remove = sorted(mine - wanted)
        add = sorted(wanted - present - (facts["other_secondary"] - set(stale)))
        room = self.capacity(seen)
        if room is not None:
            add = add[: max(0, room - (len(present) - len(remove)))]
        steps += _chunks("unassign", eni, remove, "release {n} secondary IPs from " + eni)
        steps += _chunks("assign", eni, add, "assign {n} secondary IPs to " + eni)
        rules = checks.tunnel_rules(need)
        have = facts["ingress"]
        if rules and not facts["group"]:
            steps.append(Step("create-group", f"cloudgw-{self.site}", (), f"create security group cloudgw-{self.site}"))
        for kind, changed, verb in (
            ("revoke", sorted(have - rules), "close"),
            ("authorize", sorted(rules - have), "open"),
        ):
            if changed:
                values = tuple(f"{p}/{port}/{c}" for p, port, c in changed)
                steps.append(Step(kind, "group", values, f"{verb} " + ", ".join(_rule_text(r) for r in changed)))
        for wan, groups in facts["wan_groups"].items():
            if (rules or facts["group"]) and facts["group"] not in groups:
                steps.append(Step("attach-group", wan, (), f"attach the security group to {wan}"))
        return steps

    def _wan(self) -> str:
        return self.cloud.wan_eni or self.cloud.gateway_eni

    # checks (pure) ----------------------------------------------------------------------------
    def checks(self, need: Need, seen: Observed, topo: Topology | None = None) -> list[Finding]:
        facts, site, cloud = seen.facts, self.site, self.cloud
        found: list[Finding] = checks.outside_subnet(need, seen)
        if facts["eni_subnet"] != cloud.subnet:
            found.append(
                Finding(
                    site,
                    "subnet",
                    "error",
                    f"{facts['lan_eni']} is in {facts['eni_subnet']}, not in {cloud.subnet}",
                    "name the gateway's ENI in the site's subnet (aws.gateway_eni)",
                )
            )
        if cloud.vpc is not None and cloud.vpc != facts["vpc"]:
            found.append(
                Finding(
                    site,
                    "vpc",
                    "error",
                    f"{cloud.subnet} is in {facts['vpc']}, not {cloud.vpc}",
                    f"set aws.vpc to {facts['vpc']} or name a subnet of {cloud.vpc}",
                )
            )
        if facts["source_dest_check"]:
            found.append(
                Finding(
                    site,
                    "source-dest-check",
                    "change",
                    f"the source/destination check of "
                    f"{facts['lan_eni']} is on: the gateway cannot forward for other addresses",
                    "cloudgw turns it off",
                )
            )
        for ip in sorted(need.remote_addresses):
            if ip in facts["elsewhere"]:
                found.append(
                    Finding(
                        site,
                        "address-in-use",
                        "error",
                        f"{ip} belongs to a remote site's pool but {facts['elsewhere'][ip]} holds it in {cloud.subnet}",
                        "give that interface an address of this site's own pool",
                    )
                )
        wanted = self.wanted_addresses(need, seen)
        limit = facts.get("ips_per_eni")
        if limit is not None and len(wanted) + 1 > limit:
            found.append(
                Finding(
                    site,
                    "eni-limit",
                    "error",
                    f"{facts['lan_eni']} must hold {len(wanted)} remote "
                    f"addresses but a {facts['instance_type']} ENI takes {limit - 1} secondary IPs "
                    f"({limit} with the primary)",
                    suggest_instance_type(len(wanted) + 1),
                )
            )
        else:
            missing = len(wanted - facts["secondary"])
            if missing:
                found.append(
                    Finding(
                        site,
                        "secondary-ips",
                        "change",
                        f"{missing} remote addresses are not on {facts['lan_eni']} yet",
                        "cloudgw assigns them as secondary private IPs",
                    )
                )
        rules = checks.tunnel_rules(need)
        closed = sorted(rules - facts["ingress"])
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
        for peer in sorted(need.peers):
            verdict = acl_verdict(facts["acl_entries"], peer, need.listen_port)
            if verdict != "allow":
                found.append(
                    Finding(
                        site,
                        "tunnel-port",
                        "error",
                        f"the network ACL of {cloud.subnet} denies udp/{need.listen_port} from {peer} (rule {verdict})",
                        f"add an inbound allow rule for udp/{need.listen_port} from {peer}/32 before it",
                    )
                )
        if topo is not None:
            found += checks.mtu_budget(topo, need, INTERNET_MTU, "the Internet path from AWS")
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
        """Start the gateway instance in the site's subnet (at its LAN address); returns its ids."""
        kwargs: dict[str, Any] = {
            "ImageId": image,
            "InstanceType": size,
            "MinCount": 1,
            "MaxCount": 1,
            "SubnetId": self.cloud.subnet,
            "UserData": user_data,
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": TAG, "Value": self.site}, {"Key": "Name", "Value": gateway}],
                }
            ],
        }
        if lan_ip is not None:
            kwargs["PrivateIpAddress"] = str(lan_ip)
        if key_name:
            kwargs["KeyName"] = key_name
        instance = self.call("run_instances", **kwargs)["Instances"][0]
        return {"instance": instance["InstanceId"], "interface": instance["NetworkInterfaces"][0]["NetworkInterfaceId"]}

    # burst VMs --------------------------------------------------------------------------------
    def launch_vm(self, vm: VmSpec) -> str:
        """RunInstances at the chosen private address, tagged with the policy and the address; the
        ClientToken makes a repeated call (a retry, a restarted controller) start no second VM."""
        kwargs: dict[str, Any] = {
            "ImageId": vm.image,
            "InstanceType": vm.size,
            "MinCount": 1,
            "MaxCount": 1,
            "SubnetId": self.cloud.subnet,
            "PrivateIpAddress": str(vm.ip),
            "UserData": vm.user_data,
            "ClientToken": f"cloudgw-{vm.policy}-{vm.ip}"[:64],
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [
                        {"Key": TAG, "Value": self.site},
                        {"Key": "Name", "Value": f"cloudgw-{vm.policy}-{vm.ip}"},
                        *({"Key": k, "Value": v} for k, v in vm.tags.items()),
                    ],
                }
            ],
        }
        if vm.key_name:
            kwargs["KeyName"] = vm.key_name
        return str(self.call("run_instances", **kwargs)["Instances"][0]["InstanceId"])

    def terminate_vm(self, instance: str) -> None:
        try:
            self.call("terminate_instances", InstanceIds=[instance])
        except ProviderError as exc:
            if exc.code != "InvalidInstanceID.NotFound":
                raise

    def list_vms(self, policy: str) -> dict[IPv4Address, str]:
        found: dict[IPv4Address, str] = {}
        filters = [
            {"Name": "tag:cloudgw:burst", "Values": [policy]},
            {"Name": "subnet-id", "Values": [self.cloud.subnet]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ]
        for reservation in self.pages("describe_instances", "Reservations", Filters=filters):
            for instance in reservation.get("Instances", []):
                if instance.get("PrivateIpAddress"):
                    found[IPv4Address(instance["PrivateIpAddress"])] = instance["InstanceId"]
        return found

    # apply ------------------------------------------------------------------------------------
    def apply(self, step: Step, seen: Observed) -> None:
        owned, kind = seen.owned, step.kind
        action: Callable[[], None] | None = {
            "tag": lambda: self._tag(step.target),
            "untag": lambda: self._untag(step.target),
            "source-dest-check": lambda: self._source_dest(step, seen),
            "assign": lambda: self._assign(step, owned),
            "unassign": lambda: self._unassign(step, owned),
            "create-group": lambda: self._create_group(seen),
            "authorize": lambda: self._rules("authorize_security_group_ingress", step, owned),
            "revoke": lambda: self._rules("revoke_security_group_ingress", step, owned),
            "attach-group": lambda: self._attach(step.target, owned, seen),
            "detach-group": lambda: self._detach(step.target, step.values[0], seen),
            "delete-group": lambda: self._delete_group(step.target, owned),
        }.get(kind)
        if action is None:
            raise ProviderError(f"unknown AWS step {kind}")
        action()

    def _tag(self, eni: str) -> None:
        self.call("create_tags", Resources=[eni], Tags=[{"Key": TAG, "Value": self.site}])

    def _untag(self, eni: str) -> None:
        self.call("delete_tags", Resources=[eni], Tags=[{"Key": TAG}])

    def _source_dest(self, step: Step, seen: Observed) -> None:
        on = step.values[0] == "on"
        if not on:
            seen.owned.setdefault("source_dest_check_was", seen.facts["source_dest_check"])
        self.call("modify_network_interface_attribute", NetworkInterfaceId=step.target, SourceDestCheck={"Value": on})
        if on:
            seen.owned.pop("source_dest_check_was", None)

    def _assign(self, step: Step, owned: dict[str, Any]) -> None:
        self.call("assign_private_ip_addresses", NetworkInterfaceId=step.target, PrivateIpAddresses=list(step.values))
        owned["secondary"] = sorted(
            set(owned.get("secondary", [])) | set(step.values), key=lambda a: int(IPv4Address(a))
        )

    def _unassign(self, step: Step, owned: dict[str, Any]) -> None:
        self.call("unassign_private_ip_addresses", NetworkInterfaceId=step.target, PrivateIpAddresses=list(step.values))
        owned["secondary"] = [a for a in owned.get("secondary", []) if a not in step.values]

    def _create_group(self, seen: Observed) -> None:
        created = self.call(
            "create_security_group",
            GroupName=f"cloudgw-{self.site}",
            Description=f"cloudgw: the tunnel port of site {self.site}, open to its peer gateways only",
            VpcId=seen.facts["vpc"],
            TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": TAG, "Value": self.site}]}],
        )
        seen.owned["security_group"] = seen.facts["group"] = created["GroupId"]

    def _rules(self, operation: str, step: Step, owned: dict[str, Any]) -> None:
        permissions = []
        for value in step.values:
            protocol, port, cidr = value.split("/", 2)
            permissions.append(
                {
                    "IpProtocol": protocol,
                    "FromPort": int(port),
                    "ToPort": -1 if protocol == "icmp" else int(port),  # ICMP: FromPort is the type, any code
                    "IpRanges": [{"CidrIp": cidr, "Description": "cloudgw peer gateway"}],
                }
            )
        self.call(operation, GroupId=owned["security_group"], IpPermissions=permissions)

    def _attach(self, eni: str, owned: dict[str, Any], seen: Observed) -> None:
        groups = [*seen.facts["wan_groups"].get(eni, []), owned["security_group"]]
        self.call("modify_network_interface_attribute", NetworkInterfaceId=eni, Groups=groups)
        seen.facts["wan_groups"][eni] = groups

    def _detach(self, eni: str, group: str, seen: Observed) -> None:
        groups = [g for g in seen.facts["wan_groups"].get(eni, []) if g != group]
        if not groups:  # an ENI keeps at least one group: the VPC's default
            default = self.call(
                "describe_security_groups",
                Filters=[
                    {"Name": "vpc-id", "Values": [seen.facts["vpc"]]},
                    {"Name": "group-name", "Values": ["default"]},
                ],
            )["SecurityGroups"]
            groups = [default[0]["GroupId"]]
        self.call("modify_network_interface_attribute", NetworkInterfaceId=eni, Groups=groups)
        seen.facts["wan_groups"][eni] = groups

    def _delete_group(self, group: str, owned: dict[str, Any]) -> None:
        self.call("delete_security_group", GroupId=group)
        owned.pop("security_group", None)


def _chunks(kind: str, target: str, addresses: list[IPv4Address], text: str) -> list[Step]:
    steps = []
    for start in range(0, len(addresses), CHUNK):
        part = tuple(str(a) for a in addresses[start : start + CHUNK])
        steps.append(
            Step(kind, target, part, text.format(n=len(part)) + f" ({part[0]}{' ...' if len(part) > 1 else ''})")
        )
    return steps


def acl_verdict(entries: list[dict[str, Any]], peer: IPv4Address, port: int) -> str:
    """'allow', or the number of the network ACL rule that denies udp/port from peer (AWS evaluates
    inbound rules in rule-number order; the first that matches decides; none: denied)."""
    for entry in sorted(entries, key=lambda e: int(e.get("RuleNumber", 32767))):
        if str(entry.get("Protocol")) not in ("-1", "17"):
            continue
        cidr = entry.get("CidrBlock")
        if cidr is None or peer not in IPv4Network(cidr):
            continue
        ports = entry.get("PortRange")
        if ports and not int(ports.get("From", 0)) <= port <= int(ports.get("To", 65535)):
            continue
        return "allow" if entry.get("RuleAction") == "allow" else str(entry.get("RuleNumber"))
    return "default deny"
