"""Create, update and delete sites, networks, pools, gateways and connections.

Each operation works inside one State.write() transaction (a `Change`): validate against the topology
as it is at that moment, write, audit, mark the gateways whose documents change (computed on the
topology before the change, and on the names after it). The public functions run one operation per
transaction; `apply_topology` runs a whole plan in one, so a declarative apply lands whole or not at
all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from ipaddress import IPv4Address
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete

from cloudgw.api import schemas
from cloudgw.controller.db.models import (
    BurstRow,
    ConnectionRow,
    EgressRow,
    ForwardRow,
    GatewayRow,
    NetworkRow,
    PoolRow,
    SiteRow,
)
from cloudgw.controller.state import Change, State, burst_to_row_spec, refuse
from cloudgw.errors import InvalidInput, NotFound, Problem
from cloudgw.model import rules
from cloudgw.model.burst import BurstSpec
from cloudgw.model.cloud import cloud_problems, to_items
from cloudgw.model.cloud import items_to_json as cloud_json
from cloudgw.model.textio import pydantic_problems
from cloudgw.model.topology import Connection, Egress, Forward, Gateway, HaTiming, Network, Pool, Site, ha_to_json
from cloudgw.model.topologyfile import Step, TopologyFile, check_file, from_topology, plan, site_ha


def plain(value: Any) -> dict[str, Any]:
    """A domain object as JSON-able data, for audit rows."""

    def convert(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: convert(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [convert(v) for v in item]
        if isinstance(item, str | int | float | bool) or item is None:
            return item
        return str(item)

    return convert(asdict(value))  # type: ignore[no-any-return]


def _patch(model: Any) -> dict[str, Any]:
    """The fields the caller set, as parsed values (not serialised). Only `endpoint` and a site's
    `routed_via` may be cleared (an explicit null)."""
    values = {name: getattr(model, name) for name in model.model_fields_set}
    return {k: v for k, v in values.items() if v is not None or k in ("endpoint", "routed_via")}


def _get(items: dict[str, Any], kind: str, name: str) -> Any:
    if name not in items:
        raise NotFound(kind, name)
    return items[name]


# sites ------------------------------------------------------------------------------------------
def site_create(change: Change, data: schemas.SiteCreate) -> Site:
    site = Site(
        data.name,
        data.provider,
        data.description,
        data.cloud,
        site_ha(data),
        data.kind,
        tuple(data.routed),
        data.routed_via,
    )
    refuse(rules.check_site(change.topo, site), "site")
    row = SiteRow(
        name=site.name,
        provider=site.provider,
        description=site.description,
        cloud=cloud_json(site.cloud),
        ha=ha_to_json(site.ha),
        kind=site.kind,
        routed=[str(p) for p in site.routed] or None,
        routed_via=str(site.routed_via) if site.routed_via else None,
    )
    change.add("site", site.name, site, row)
    change.record("create", "site", site.name, None, plain(site))
    return site


def site_update(change: Change, name: str, data: schemas.SiteUpdate) -> Site:
    old = _get(change.topo.sites, "site", name)
    fields = _patch(data)
    fields.pop("aws", None), fields.pop("openstack", None)
    if data.model_fields_set & {"aws", "openstack"}:  # an explicit null clears the cloud identity
        fields["cloud"] = to_items(data.aws or data.openstack)
    fields.pop("ha", None)
    if "routed" in fields:
        fields["routed"] = tuple(fields["routed"])
    if "ha" in data.model_fields_set:  # an explicit null restores the default timing
        fields["ha"] = data.ha.timing() if data.ha is not None else HaTiming()
    new = replace(old, **fields)
    refuse(
        cloud_problems(new.provider, data.aws, data.openstack) or rules.check_site(change.topo, new, old_name=name),
        "site",
    )
    row = change.session.get(SiteRow, change.id_of("site", name))
    assert row is not None
    row.name, row.provider, row.description = new.name, new.provider, new.description
    row.cloud = cloud_json(new.cloud)
    row.ha = ha_to_json(new.ha)
    row.kind, row.routed = new.kind, [str(p) for p in new.routed] or None
    row.routed_via = str(new.routed_via) if new.routed_via else None
    change.record("update", "site", name, plain(old), plain(new))
    return new


def site_delete(change: Change, name: str, cascade: bool = False) -> None:
    old = _get(change.topo.sites, "site", name)
    refuse(rules.check_site_delete(change.topo, name, cascade), "delete")
    change.session.execute(delete(SiteRow).where(SiteRow.id == change.id_of("site", name)))
    change.record("delete", "site", name, plain(old), None)


# networks ---------------------------------------------------------------------------------------
def network_create(change: Change, data: schemas.NetworkCreate) -> Network:
    network = Network(data.name, data.cidr, data.mode, data.description, data.flood)
    refuse(rules.check_network(change.topo, network), "network")
    change.add(
        "network",
        network.name,
        network,
        NetworkRow(
            name=network.name,
            cidr=str(network.cidr),
            mode=network.mode,
            description=network.description,
            flood=network.flood,
        ),
    )
    change.record("create", "network", network.name, None, plain(network))
    return network


def network_update(change: Change, name: str, data: schemas.NetworkUpdate) -> Network:
    old = _get(change.topo.networks, "network", name)
    new = replace(old, **_patch(data))
    refuse(rules.check_network(change.topo, new, old_name=name), "network")
    row = change.session.get(NetworkRow, change.id_of("network", name))
    assert row is not None
    row.name, row.cidr, row.mode, row.description = new.name, str(new.cidr), new.mode, new.description
    row.flood = new.flood
    change.record("update", "network", name, plain(old), plain(new))
    return new


def network_delete(change: Change, name: str, cascade: bool = False) -> None:
    old = _get(change.topo.networks, "network", name)
    refuse(rules.check_network_delete(change.topo, name, cascade), "delete")
    change.session.execute(delete(NetworkRow).where(NetworkRow.id == change.id_of("network", name)))
    change.record("delete", "network", name, plain(old), None)


# pools ------------------------------------------------------------------------------------------
def pool_create(change: Change, data: schemas.PoolCreate) -> Pool:
    default = f"{data.site}-{data.network}"
    pool = Pool(data.name or default, data.network, data.site, data.range)
    problems = rules.check_pool(change.topo, pool, spans=change.pool_spans)
    if data.name is None and default in change.topo.pools:
        # every other problem is still reported; only the name's message says what to do instead
        problems = [p for p in problems if p.field != "name"]
        problems.insert(
            0,
            Problem(
                "name",
                f"site '{data.site}' already has a pool in '{data.network}' under the default name '{default}'",
                f"name this pool yourself, e.g. {default}-2 (CLI: --name {default}-2)",
                conflict=True,
            ),
        )
    refuse(problems, "pool")
    change.add(
        "pool",
        pool.name,
        pool,
        PoolRow(
            name=pool.name,
            network_id=change.id_of("network", pool.network),
            site_id=change.id_of("site", pool.site),
            first=str(pool.range.first),
            last=str(pool.range.last),
        ),
    )
    change.record("create", "pool", pool.name, None, plain(pool))
    return pool


def pool_update(change: Change, name: str, data: schemas.PoolUpdate) -> Pool:
    old = _get(change.topo.pools, "pool", name)
    new = replace(old, **_patch(data))
    refuse(
        rules.check_pool(change.topo, new, old_name=name, spans=change.pool_spans)
        + rules.check_pool_keeps_forwards(change.topo, old, new)
        + rules.check_pool_keeps_bursts(change.topo, old, new),
        "pool",
    )
    row = change.session.get(PoolRow, change.id_of("pool", name))
    assert row is not None
    row.name, row.first, row.last = new.name, str(new.range.first), str(new.range.last)
    change.record("update", "pool", name, plain(old), plain(new))
    return new


def pool_delete(change: Change, name: str, cascade: bool = False) -> None:
    old = _get(change.topo.pools, "pool", name)
    refuse(
        rules.check_pool_keeps_forwards(change.topo, old, None) + rules.check_pool_keeps_bursts(change.topo, old, None),
        "delete",
    )
    change.session.execute(delete(PoolRow).where(PoolRow.id == change.id_of("pool", name)))
    change.record("delete", "pool", name, plain(old), None)


# gateways ---------------------------------------------------------------------------------------
def gateway_create(change: Change, data: schemas.GatewayCreate) -> Gateway:
    gateway = Gateway(
        data.name,
        data.site,
        data.endpoint,
        data.public_key,
        data.wan_interface,
        data.lan_interface,
        tuple(data.lan_addresses),
        data.listen_port,
        data.priority,
    )
    refuse(rules.check_gateway_key(change.topo, gateway, None) + rules.check_gateway(change.topo, gateway), "gateway")
    change.add(
        "gateway",
        gateway.name,
        gateway,
        GatewayRow(
            name=gateway.name,
            site_id=change.id_of("site", gateway.site),
            endpoint=gateway.endpoint,
            wan_interface=gateway.wan_interface,
            lan_interface=gateway.lan_interface,
            lan_addresses=[str(a) for a in gateway.lan_addresses],
            listen_port=gateway.listen_port,
            priority=gateway.priority,
            public_key=gateway.public_key,
            doc_revision=change.revision,
        ),
    )
    change.record("create", "gateway", gateway.name, None, plain(gateway))
    return gateway


def gateway_update(change: Change, name: str, data: schemas.GatewayUpdate) -> Gateway:
    old = _get(change.topo.gateways, "gateway", name)
    patch = _patch(data)
    if "lan_addresses" in patch:
        patch["lan_addresses"] = tuple(IPv4Address(a) for a in patch["lan_addresses"])
    new = replace(old, **patch)
    refuse(
        rules.check_gateway_key(change.topo, new, old) + rules.check_gateway(change.topo, new, old_name=name), "gateway"
    )
    row = change.session.get(GatewayRow, change.id_of("gateway", name))
    assert row is not None
    row.name, row.endpoint, row.wan_interface, row.lan_interface = (
        new.name,
        new.endpoint,
        new.wan_interface,
        new.lan_interface,
    )
    row.lan_addresses = [str(a) for a in new.lan_addresses]
    row.listen_port = new.listen_port
    row.priority = new.priority
    row.public_key = new.public_key
    if new.site != old.site:  # a role belongs to a site's pair
        row.role, row.role_epoch, row.lease_until = None, 0, None
        new = replace(new, role=None, role_epoch=0)
    row.site_id = change.id_of("site", new.site)
    change.record("update", "gateway", name, plain(old), plain(new))
    return new


def gateway_delete(change: Change, name: str, cascade: bool = False) -> None:
    old = _get(change.topo.gateways, "gateway", name)
    change.session.execute(delete(GatewayRow).where(GatewayRow.id == change.id_of("gateway", name)))
    change.record("delete", "gateway", name, plain(old), None)


# connections ------------------------------------------------------------------------------------
def connection_create(change: Change, data: schemas.ConnectionCreate) -> Connection:
    name = data.name or f"{data.site_a}-{data.site_b}-{data.network}"
    connection = Connection(name, data.network, data.site_a, data.site_b, data.enabled, data.mtu, data.keepalive)
    refuse(rules.check_connection(change.topo, connection), "connection")
    change.add(
        "connection",
        name,
        connection,
        ConnectionRow(
            name=name,
            network_id=change.id_of("network", connection.network),
            site_a_id=change.id_of("site", connection.site_a),
            site_b_id=change.id_of("site", connection.site_b),
            enabled=connection.enabled,
            mtu=connection.mtu,
            keepalive=connection.keepalive,
        ),
    )
    change.record("create", "connection", name, None, plain(connection))
    return connection


def connection_update(change: Change, name: str, data: schemas.ConnectionUpdate) -> Connection:
    old = _get(change.topo.connections, "connection", name)
    new = replace(old, **_patch(data))
    refuse(
        rules.check_connection(change.topo, new, old_name=name)
        + rules.check_connection_keeps_egress(change.topo, old, new),
        "connection",
    )
    row = change.session.get(ConnectionRow, change.id_of("connection", name))
    assert row is not None
    row.name, row.enabled, row.mtu, row.keepalive = new.name, new.enabled, new.mtu, new.keepalive
    change.record("update", "connection", name, plain(old), plain(new))
    return new


def connection_delete(change: Change, name: str, cascade: bool = False) -> None:
    old = _get(change.topo.connections, "connection", name)
    refuse(rules.check_connection_keeps_egress(change.topo, old, None), "delete")
    change.session.execute(delete(ConnectionRow).where(ConnectionRow.id == change.id_of("connection", name)))
    change.record("delete", "connection", name, plain(old), None)


# egress -----------------------------------------------------------------------------------------


def egress_create(change: Change, data: schemas.EgressCreate) -> Egress:
    egress = Egress(f"{data.site}-{data.network}", data.site, data.network, data.mode, data.via)
    refuse(rules.check_egress(change.topo, egress), "egress")
    change.add(
        "egress",
        egress.name,
        egress,
        EgressRow(
            site_id=change.id_of("site", egress.site),
            network_id=change.id_of("network", egress.network),
            mode=egress.mode,
            via_site_id=change.id_of("site", egress.via) if egress.via else None,
        ),
    )
    change.record("create", "egress", egress.name, None, plain(egress))
    return egress


def egress_update(change: Change, name: str, data: schemas.EgressUpdate) -> Egress:
    old = _get(change.topo.egress, "egress", name)
    patch = _patch(data)
    if patch.get("mode") in ("local", "none") and "via" not in patch:
        patch["via"] = None
    new = replace(old, **patch)
    refuse(rules.check_egress(change.topo, new, old_name=name), "egress")
    row = change.session.get(EgressRow, change.id_of("egress", name))
    assert row is not None
    row.mode = new.mode
    row.via_site_id = change.id_of("site", new.via) if new.via else None
    change.record("update", "egress", name, plain(old), plain(new))
    return new


def egress_delete(change: Change, name: str, cascade: bool = False) -> None:
    old = _get(change.topo.egress, "egress", name)
    change.session.execute(delete(EgressRow).where(EgressRow.id == change.id_of("egress", name)))
    change.record("delete", "egress", name, plain(old), None)


# port forwards ----------------------------------------------------------------------------------
def forward_create(change: Change, data: schemas.ForwardCreate) -> Forward:
    forward = Forward(data.name, data.gateway, data.protocol, data.public_port, data.target_ip, data.target_port)
    refuse(rules.check_forward(change.topo, forward), "forward")
    change.add(
        "forward",
        forward.name,
        forward,
        ForwardRow(
            name=forward.name,
            gateway_id=change.id_of("gateway", forward.gateway),
            protocol=forward.protocol,
            public_port=forward.public_port,
            target_ip=str(forward.target_ip),
            target_port=forward.target_port,
        ),
    )
    change.record("create", "forward", forward.name, None, plain(forward))
    return forward


def forward_update(change: Change, name: str, data: schemas.ForwardUpdate) -> Forward:
    old = _get(change.topo.forwards, "forward", name)
    new = replace(old, **_patch(data))
    refuse(rules.check_forward(change.topo, new, old_name=name), "forward")
    row = change.session.get(ForwardRow, change.id_of("forward", name))
    assert row is not None
    row.protocol, row.public_port, row.target_port = new.protocol, new.public_port, new.target_port
    row.target_ip = str(new.target_ip)
    change.record("update", "forward", name, plain(old), plain(new))
    return new


def forward_delete(change: Change, name: str, cascade: bool = False) -> None:
    old = _get(change.topo.forwards, "forward", name)
    change.session.execute(delete(ForwardRow).where(ForwardRow.id == change.id_of("forward", name)))
    change.record("delete", "forward", name, plain(old), None)


# one operation, one transaction -----------------------------------------------------------------
# burst policies -------------------------------------------------------------------------------
def _burst_row_values(change: Change, spec: BurstSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "network_id": change.id_of("network", spec.network),
        "site_id": change.id_of("site", spec.site),
        "spec": burst_to_row_spec(spec),
    }


def _burst_record(spec: BurstSpec) -> dict[str, Any]:
    # the audit keeps the policy without the user-data (the admin's script may be long)
    return spec.model_dump(mode="json", exclude={"template": {"user_data"}})


def burst_create(change: Change, data: BurstSpec) -> BurstSpec:
    if data.name in change.topo.bursts:
        refuse(
            [Problem("name", f"burst policy '{data.name}' already exists", "choose another name", conflict=True)],
            "burst policy",
        )
    refuse(rules.check_burst(change.topo, data), "burst policy")
    change.add("burst", data.name, data, BurstRow(**_burst_row_values(change, data)))
    change.record("create", "burst", data.name, None, _burst_record(data))
    return data


def burst_update(change: Change, name: str, data: schemas.BurstUpdate) -> BurstSpec:
    old = _get(change.topo.bursts, "burst policy", name)
    try:
        new = BurstSpec.model_validate({**old.model_dump(), **data.model_dump(exclude_unset=True)})
    except ValidationError as exc:
        raise InvalidInput(pydantic_problems(exc), what="burst policy") from None
    problems = rules.check_burst(change.topo, new)
    if new.name != name and new.name in change.topo.bursts:
        problems.append(
            Problem("name", f"burst policy '{new.name}' already exists", "choose another name", conflict=True)
        )
    refuse(problems, "burst policy")
    row = change.session.get(BurstRow, change.id_of("burst", name))
    assert row is not None
    for key, value in _burst_row_values(change, new).items():
        setattr(row, key, value)
    change.record("update", "burst", name, _burst_record(old), _burst_record(new))
    return new


def burst_delete(change: Change, name: str, cascade: bool = False) -> None:
    old = _get(change.topo.bursts, "burst policy", name)
    change.session.execute(delete(BurstRow).where(BurstRow.id == change.id_of("burst", name)))
    change.record("delete", "burst", name, _burst_record(old), None)


OPERATIONS: dict[str, dict[str, Callable[..., Any]]] = {
    "sites": {"create": site_create, "update": site_update, "delete": site_delete},
    "networks": {"create": network_create, "update": network_update, "delete": network_delete},
    "pools": {"create": pool_create, "update": pool_update, "delete": pool_delete},
    "gateways": {"create": gateway_create, "update": gateway_update, "delete": gateway_delete},
    "connections": {"create": connection_create, "update": connection_update, "delete": connection_delete},
    "egress": {"create": egress_create, "update": egress_update, "delete": egress_delete},
    "forwards": {"create": forward_create, "update": forward_update, "delete": forward_delete},
    "bursts": {"create": burst_create, "update": burst_update, "delete": burst_delete},
}
SCHEMAS: dict[str, tuple[Any, Any]] = {
    "sites": (schemas.SiteCreate, schemas.SiteUpdate),
    "networks": (schemas.NetworkCreate, schemas.NetworkUpdate),
    "pools": (schemas.PoolCreate, schemas.PoolUpdate),
    "gateways": (schemas.GatewayCreate, schemas.GatewayUpdate),
    "connections": (schemas.ConnectionCreate, schemas.ConnectionUpdate),
    "egress": (schemas.EgressCreate, schemas.EgressUpdate),
    "forwards": (schemas.ForwardCreate, schemas.ForwardUpdate),
    "bursts": (schemas.BurstCreate, schemas.BurstUpdate),
}


def operation(kind: str, op: str) -> Callable[..., Any]:
    """A function (state, actor, *args) that runs one operation in its own transaction."""
    work = OPERATIONS[kind][op]

    def run(state: State, actor: str, *args: Any) -> Any:
        with state.write(actor) as change:
            return work(change, *args)

    return run


@dataclass(frozen=True)
class Created:
    """A create's result with the rows it inserted and the revision it committed: enough to answer
    with the new object without reading it back from the database."""

    obj: Any
    rows: tuple[Any, ...]
    revision: int


def creation(kind: str) -> Callable[[State, str, Any], Created]:
    """operation(kind, "create"), returning the Created record."""
    work = OPERATIONS[kind]["create"]

    def run(state: State, actor: str, data: Any) -> Created:
        with state.write(actor) as change:
            obj = work(change, data)
        return Created(obj, tuple(change.inserted), change.revision)

    return run


# a whole topology, one transaction --------------------------------------------------------------
def prune_problems(steps: list[Step], prune: bool, expect_revision: int | None) -> list[Problem]:
    """Deleting what a file does not name needs both an explicit prune and the revision the plan was
    made at: an empty or partial file sent by mistake must not delete every gateway and credential."""
    deletes = [s for s in steps if s.op == "delete"]
    if not deletes:
        return []
    named = ", ".join(f"{s.kind} {s.name}" for s in deletes[:5]) + (" ..." if len(deletes) > 5 else "")
    if not prune:
        return [
            Problem(
                "prune",
                f"this file would delete {len(deletes)} object(s) it does not name ({named})",
                "add them to the file, or repeat with prune=true and expect_revision (a dry run gives it)",
                conflict=True,
            )
        ]
    if expect_revision is None:
        return [
            Problem(
                "expect_revision",
                f"prune would delete {len(deletes)} object(s) ({named}) but no expected revision was given",
                "run with dry_run=true first and pass its revision as expect_revision",
                conflict=True,
            )
        ]
    return []


def apply_topology(
    state: State,
    actor: str,
    desired: TopologyFile,
    dry_run: bool = False,
    expect_revision: int | None = None,
    prune: bool = False,
) -> tuple[list[Step], int]:
    """Make the topology match `desired`. Returns the plan and the resulting revision. Validated as
    a whole before anything is written; applied in one transaction. Deletions need `prune` and
    `expect_revision` (prune_problems)."""
    problems = check_file(desired)
    if problems:
        raise InvalidInput(problems, what="topology")
    snapshot = state.snapshot()
    steps = plan(desired, from_topology(snapshot.topo))
    if dry_run or not steps:
        return steps, snapshot.revision
    refuse(prune_problems(steps, prune, expect_revision), "apply")
    with state.write(actor) as change:
        if expect_revision is not None and change.before.revision != expect_revision:
            raise InvalidInput(
                [
                    Problem(
                        "expect_revision",
                        f"the topology changed since the plan was made "
                        f"(revision {expect_revision}, now {change.before.revision})",
                        "run apply again to see the new plan",
                        conflict=True,
                    )
                ],
                what="apply",
            )
        steps = plan(desired, from_topology(change.topo))
        refuse(prune_problems(steps, prune, expect_revision), "apply")
        for step in steps:
            create_schema, update_schema = SCHEMAS[step.kind]
            work = OPERATIONS[step.kind][step.op]
            if step.op == "create":
                work(change, create_schema.model_validate(step.body))
            elif step.op == "update":
                work(change, step.name, update_schema.model_validate(step.body))
            else:
                work(change, step.name)
            change.refresh()
    return steps, change.revision
