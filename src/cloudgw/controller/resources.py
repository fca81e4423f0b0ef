"""Create, update and delete sites, networks, pools, gateways and connections, each through
State.write(): validate against the topology before the change, write, audit, mark the gateways whose
documents change (computed on the topology before *and* after, so a removed link is noticed too)."""

from __future__ import annotations

from dataclasses import asdict, replace
from ipaddress import IPv4Address
from typing import Any

from sqlalchemy import delete, select

from cloudgw.controller.db.models import ConnectionRow, GatewayRow, NetworkRow, PoolRow, SiteRow
from cloudgw.controller.schemas import (
    ConnectionCreate,
    ConnectionUpdate,
    GatewayCreate,
    GatewayUpdate,
    NetworkCreate,
    NetworkUpdate,
    PoolCreate,
    PoolUpdate,
    SiteCreate,
    SiteUpdate,
)
from cloudgw.controller.state import Change, State, refuse
from cloudgw.errors import NotFound
from cloudgw.mapping.documents import touching_sites
from cloudgw.model import rules
from cloudgw.model.topology import Connection, Gateway, Network, Pool, Site, Topology


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

    data = asdict(value) if hasattr(value, "__dataclass_fields__") else dict(value)
    return convert(data)  # type: ignore[no-any-return]


def _patch(model: Any) -> dict[str, Any]:
    """The fields the caller set, as parsed values (not serialised). Only `endpoint` may be cleared."""
    values = {name: getattr(model, name) for name in model.model_fields_set}
    return {k: v for k, v in values.items() if v is not None or k == "endpoint"}


def _site_gateways(topo: Topology, sites: set[str], network: str | None = None) -> set[str]:
    return touching_sites(topo, {s for s in sites if s in topo.sites}, network)


# sites ------------------------------------------------------------------------------------------
def create_site(state: State, actor: str, data: SiteCreate) -> Site:
    site = Site(data.name, data.provider, data.description)
    with state.write(actor) as change:
        refuse(rules.check_site(change.topo, site), "site")
        change.session.add(SiteRow(name=site.name, provider=site.provider, description=site.description))
        change.config_changed = True
        change.record("create", "site", site.name, None, plain(site))
    return site


def update_site(state: State, actor: str, name: str, data: SiteUpdate) -> Site:
    with state.write(actor) as change:
        old = _get(change.topo.sites, "site", name)
        new = replace(old, **_patch(data))
        refuse(rules.check_site(change.topo, new, old_name=name), "site")
        row = change.session.get(SiteRow, change.id_of("site", name))
        assert row is not None
        row.name, row.provider, row.description = new.name, new.provider, new.description
        change.config_changed = True
        change.affected |= _site_gateways(change.topo, {name})
        change.record("update", "site", name, plain(old), plain(new))
    return new


def delete_site(state: State, actor: str, name: str, cascade: bool = False) -> None:
    with state.write(actor) as change:
        old = _get(change.topo.sites, "site", name)
        refuse(rules.check_site_delete(change.topo, name, cascade), "delete")
        change.affected |= _site_gateways(change.topo, {name}) - {g.name for g in change.topo.gateways_of(name)}
        change.session.execute(delete(SiteRow).where(SiteRow.id == change.id_of("site", name)))
        change.config_changed = True
        change.record("delete", "site", name, plain(old), None)


# networks ---------------------------------------------------------------------------------------
def _network_gateways(topo: Topology, network: str) -> set[str]:
    sites = {s for c in topo.connections.values() if c.network == network for s in (c.site_a, c.site_b)}
    return topo.gateways_for_sites(sites)


def create_network(state: State, actor: str, data: NetworkCreate) -> Network:
    network = Network(data.name, data.cidr, data.mode, data.description)
    with state.write(actor) as change:
        refuse(rules.check_network(change.topo, network), "network")
        change.session.add(
            NetworkRow(name=network.name, cidr=str(network.cidr), mode=network.mode, description=network.description)
        )
        change.config_changed = True
        change.record("create", "network", network.name, None, plain(network))
    return network


def update_network(state: State, actor: str, name: str, data: NetworkUpdate) -> Network:
    with state.write(actor) as change:
        old = _get(change.topo.networks, "network", name)
        new = replace(old, **_patch(data))
        refuse(rules.check_network(change.topo, new, old_name=name), "network")
        row = change.session.get(NetworkRow, change.id_of("network", name))
        assert row is not None
        row.name, row.cidr, row.mode, row.description = new.name, str(new.cidr), new.mode, new.description
        change.config_changed = True
        change.affected |= _network_gateways(change.topo, name)
        change.record("update", "network", name, plain(old), plain(new))
    return new


def delete_network(state: State, actor: str, name: str, cascade: bool = False) -> None:
    with state.write(actor) as change:
        old = _get(change.topo.networks, "network", name)
        refuse(rules.check_network_delete(change.topo, name, cascade), "delete")
        change.affected |= _network_gateways(change.topo, name)
        change.session.execute(delete(NetworkRow).where(NetworkRow.id == change.id_of("network", name)))
        change.config_changed = True
        change.record("delete", "network", name, plain(old), None)


# pools ------------------------------------------------------------------------------------------
def create_pool(state: State, actor: str, data: PoolCreate) -> Pool:
    pool = Pool(data.name or f"{data.site}-{data.network}", data.network, data.site, data.range)
    with state.write(actor) as change:
        refuse(rules.check_pool(change.topo, pool), "pool")
        change.session.add(
            PoolRow(
                name=pool.name,
                network_id=change.id_of("network", pool.network),
                site_id=change.id_of("site", pool.site),
                first=str(pool.range.first),
                last=str(pool.range.last),
            )
        )
        change.config_changed = True
        change.affected |= _site_gateways(change.topo, {pool.site}, pool.network)
        change.record("create", "pool", pool.name, None, plain(pool))
    return pool


def update_pool(state: State, actor: str, name: str, data: PoolUpdate) -> Pool:
    with state.write(actor) as change:
        old = _get(change.topo.pools, "pool", name)
        new = replace(old, **_patch(data))
        refuse(rules.check_pool(change.topo, new, old_name=name), "pool")
        row = change.session.get(PoolRow, change.id_of("pool", name))
        assert row is not None
        row.name, row.first, row.last = new.name, str(new.range.first), str(new.range.last)
        change.config_changed = True
        change.affected |= _site_gateways(change.topo, {old.site}, old.network)
        change.record("update", "pool", name, plain(old), plain(new))
    return new


def delete_pool(state: State, actor: str, name: str) -> None:
    with state.write(actor) as change:
        old = _get(change.topo.pools, "pool", name)
        change.affected |= _site_gateways(change.topo, {old.site}, old.network)
        change.session.execute(delete(PoolRow).where(PoolRow.id == change.id_of("pool", name)))
        change.config_changed = True
        change.record("delete", "pool", name, plain(old), None)


# gateways ---------------------------------------------------------------------------------------
def create_gateway(state: State, actor: str, data: GatewayCreate) -> Gateway:
    gateway = Gateway(
        data.name,
        data.site,
        data.endpoint,
        None,
        data.wan_interface,
        data.lan_interface,
        tuple(data.lan_addresses),
        data.listen_port,
    )
    with state.write(actor) as change:
        refuse(rules.check_gateway(change.topo, gateway), "gateway")
        change.session.add(
            GatewayRow(
                name=gateway.name,
                site_id=change.id_of("site", gateway.site),
                endpoint=gateway.endpoint,
                wan_interface=gateway.wan_interface,
                lan_interface=gateway.lan_interface,
                lan_addresses=[str(a) for a in gateway.lan_addresses],
                listen_port=gateway.listen_port,
                doc_revision=change.revision,
            )
        )
        change.config_changed = True
        change.record("create", "gateway", gateway.name, None, plain(gateway))
    return gateway


def update_gateway(state: State, actor: str, name: str, data: GatewayUpdate) -> Gateway:
    with state.write(actor) as change:
        old = _get(change.topo.gateways, "gateway", name)
        patch = _patch(data)
        if "lan_addresses" in patch:
            patch["lan_addresses"] = tuple(IPv4Address(a) for a in patch["lan_addresses"])
        new = replace(old, **patch)
        refuse(rules.check_gateway(change.topo, new, old_name=name), "gateway")
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
        row.site_id = change.id_of("site", new.site)
        change.config_changed = True
        change.affected |= _site_gateways(change.topo, {old.site, new.site}) | {new.name}
        change.record("update", "gateway", name, plain(old), plain(new))
    return new


def delete_gateway(state: State, actor: str, name: str) -> None:
    with state.write(actor) as change:
        old = _get(change.topo.gateways, "gateway", name)
        change.affected |= _site_gateways(change.topo, {old.site}) - {name}
        change.session.execute(delete(GatewayRow).where(GatewayRow.id == change.id_of("gateway", name)))
        change.config_changed = True
        change.record("delete", "gateway", name, plain(old), None)


# connections ------------------------------------------------------------------------------------
def create_connection(state: State, actor: str, data: ConnectionCreate) -> Connection:
    name = data.name or f"{data.site_a}-{data.site_b}-{data.network}"
    connection = Connection(name, data.network, data.site_a, data.site_b, data.enabled, data.mtu, data.keepalive)
    with state.write(actor) as change:
        refuse(rules.check_connection(change.topo, connection), "connection")
        change.session.add(
            ConnectionRow(
                name=name,
                network_id=change.id_of("network", connection.network),
                site_a_id=change.id_of("site", connection.site_a),
                site_b_id=change.id_of("site", connection.site_b),
                enabled=connection.enabled,
                mtu=connection.mtu,
                keepalive=connection.keepalive,
            )
        )
        change.config_changed = True
        change.affected |= change.topo.gateways_for_sites({connection.site_a, connection.site_b})
        change.record("create", "connection", name, None, plain(connection))
    return connection


def update_connection(state: State, actor: str, name: str, data: ConnectionUpdate) -> Connection:
    with state.write(actor) as change:
        old = _get(change.topo.connections, "connection", name)
        new = replace(old, **_patch(data))
        refuse(rules.check_connection(change.topo, new, old_name=name), "connection")
        row = change.session.get(ConnectionRow, change.id_of("connection", name))
        assert row is not None
        row.name, row.enabled, row.mtu, row.keepalive = new.name, new.enabled, new.mtu, new.keepalive
        change.config_changed = True
        change.affected |= change.topo.gateways_for_sites({old.site_a, old.site_b})
        change.record("update", "connection", name, plain(old), plain(new))
    return new


def delete_connection(state: State, actor: str, name: str) -> None:
    with state.write(actor) as change:
        old = _get(change.topo.connections, "connection", name)
        change.affected |= change.topo.gateways_for_sites({old.site_a, old.site_b})
        change.session.execute(delete(ConnectionRow).where(ConnectionRow.id == change.id_of("connection", name)))
        change.config_changed = True
        change.record("delete", "connection", name, plain(old), None)


def _get(items: dict[str, Any], kind: str, name: str) -> Any:
    if name not in items:
        raise NotFound(kind, name)
    return items[name]


def rows(state: State, model: Any) -> list[Any]:
    with state.session() as session:
        return list(session.scalars(select(model).order_by(model.name)))


__all__ = ["Change", "rows"]
