"""Tokens, the gateway join, endpoint announcements and heartbeats."""

from __future__ import annotations

import datetime
import logging
import threading
import weakref
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import Any

from sqlalchemy import delete, insert, select, update

from cloudgw.api.schemas import Announce, Heartbeat, JoinRequest, TokenCreate
from cloudgw.controller.db.models import EndpointRow, GatewayRow, TokenRow, utcnow
from cloudgw.controller.state import Change, State, refuse
from cloudgw.errors import InvalidInput, NotFound, Problem, Unauthorized
from cloudgw.logs import log_event
from cloudgw.model import rules
from cloudgw.model.tokens import format_token, hash_secret, new_secret
from cloudgw.model.topology import Announcement, Topology

log = logging.getLogger("cloudgw.controller")
JOIN_TTL_HOURS = 24.0


def create_token(state: State, actor: str, data: TokenCreate) -> tuple[TokenRow, str]:
    """Returns the row and the token text, which is shown once and never stored."""
    token_id, secret = new_secret()
    with state.write(actor) as change:
        problems = []
        if change.session.scalar(select(TokenRow.id).where(TokenRow.name == data.name)):
            problems.append(
                Problem("name", f"token '{data.name}' already exists", "choose another name", conflict=True)
            )
        gateway_id = None
        if data.role == "join":
            if not data.gateway:
                problems.append(Problem("gateway", "a join token is for one gateway", "name the gateway"))
            elif data.gateway not in change.topo.gateways:
                problems.append(Problem("gateway", f"unknown gateway '{data.gateway}'", "create the gateway first"))
            elif change.topo.sites[change.topo.gateways[data.gateway].site].external:
                problems.append(
                    Problem(
                        "gateway",
                        f"'{data.gateway}' is an external site's router: it runs no agent and never joins",
                        f"configure it with `cloudgw site export-config {change.topo.gateways[data.gateway].site}`",
                    )
                )
            else:
                gateway_id = change.id_of("gateway", data.gateway)
        elif data.gateway:
            problems.append(Problem("gateway", "only join tokens belong to a gateway", "leave it out"))
        refuse(problems, "token")
        ttl = data.ttl_hours or (JOIN_TTL_HOURS if data.role == "join" else None)
        expires = utcnow() + datetime.timedelta(hours=ttl) if ttl else None
        row = TokenRow(
            id=token_id,
            name=data.name,
            role=data.role,
            secret_hash=hash_secret(secret),
            gateway_id=gateway_id,
            expires_at=expires,
            created_by=actor,
        )
        change.session.add(row)
        change.record("create", "token", data.name, None, {"id": token_id, "role": data.role, "gateway": data.gateway})
    text = format_token(token_id, secret, state.ca_fingerprint if data.role == "join" else None)
    return row, text


def delete_token(state: State, actor: str, name: str) -> None:
    with state.write(actor) as change:
        row = change.session.scalar(select(TokenRow).where((TokenRow.name == name) | (TokenRow.id == name)))
        if row is None:
            raise NotFound("token", name)
        change.session.delete(row)
        change.record("delete", "token", row.name, {"id": row.id, "role": row.role}, None)


@dataclass
class _Join:
    token_id: str
    request: JoinRequest
    credential_id: str
    secret: str
    result: tuple[str, str] | None = None  # (gateway, credential text)
    error: Exception | None = None
    done: bool = False


class _JoinQueue:
    """Joins that arrive while one is being written wait here and are then written together, in
    one write (one revision, one commit, one notification of the peers), each checked exactly as
    if alone. A gateway joining alone is written at once. 1,000 gateways joining together spent most
    of the controller's time on what every write does once (docs/benchmarks.md)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # guards `pending`
        self.writer = threading.Lock()  # held by the thread writing a batch
        self.pending: list[_Join] = []


_QUEUES: weakref.WeakKeyDictionary[State, _JoinQueue] = weakref.WeakKeyDictionary()
_QUEUES_LOCK = threading.Lock()


def join(state: State, token_id: str, request: JoinRequest) -> tuple[str, str]:
    """Consume a join token: record the gateway's public key and issue its own credential.
    Returns (gateway name, credential text)."""
    with _QUEUES_LOCK:
        queue = _QUEUES.setdefault(state, _JoinQueue())
    item = _Join(token_id, request, *new_secret())
    with queue.lock:
        queue.pending.append(item)
    with queue.writer:
        if not item.done:  # else a batch written while this thread waited held it
            with queue.lock:
                batch, queue.pending = queue.pending, []
            _write_joins(state, batch)
    if item.error is not None:
        raise item.error
    assert item.result is not None
    log_event(log, "gateway.joined", gateway=item.result[0], public_key=request.public_key)
    return item.result


class _NoneJoined(Exception):
    """Every join of a batch was refused: nothing to write."""


def _write_joins(state: State, batch: list[_Join]) -> None:
    try:
        with state.write(f"join:{batch[0].token_id}") as change:
            for item in batch:
                try:
                    item.result = _join_one(change, item)
                except (Unauthorized, InvalidInput, NotFound) as exc:  # refused before it wrote anything
                    item.error = exc
            if all(item.error is not None for item in batch):
                raise _NoneJoined
    except _NoneJoined:
        pass
    except Exception as exc:
        if len(batch) == 1:
            batch[0].error, batch[0].result = exc, None
        else:  # the database refused the batch: each alone, so one join cannot fail the others
            for item in batch:
                item.error = item.result = None
                _write_joins(state, [item])
    finally:
        for item in batch:
            item.done = True


def _join_one(change: Change, item: _Join) -> tuple[str, str]:
    """One join inside a batch's write. Every refusal comes before this join writes anything."""
    # plain statements, not the ORM's unit of work: a join is one row each (at 1,000 joins the
    # loads, flushes and session synchronisation were a third of the controller's write time)
    quiet = {"synchronize_session": False}
    unused = (TokenRow.id == item.token_id, TokenRow.role == "join", TokenRow.used_at.is_(None))
    gateway_id = change.session.scalar(select(TokenRow.gateway_id).where(*unused))
    if gateway_id is None:
        raise Unauthorized("join token already used or unknown")
    name = change.session.scalar(select(GatewayRow.name).where(GatewayRow.id == gateway_id))
    if name is None or name not in change.topo.gateways:
        raise Unauthorized("join token already used or unknown")
    old = change.topo.gateways[name]
    new = replace(old, public_key=item.request.public_key, endpoint=item.request.endpoint or old.endpoint)
    refuse(rules.check_gateway(change.topo, new, old_name=old.name), "join")
    claimed = change.session.execute(update(TokenRow).where(*unused).values(used_at=utcnow()), execution_options=quiet)
    if claimed.rowcount != 1:  # type: ignore[attr-defined]  # another replica took it meanwhile
        raise Unauthorized("join token already used or unknown")
    change.session.execute(
        update(GatewayRow)
        .where(GatewayRow.id == gateway_id)
        .values(public_key=new.public_key, endpoint=new.endpoint, joined_at=utcnow(), version=item.request.version),
        execution_options=quiet,
    )
    change.session.execute(
        delete(TokenRow).where(TokenRow.gateway_id == gateway_id, TokenRow.role == "gateway"),
        execution_options=quiet,
    )
    change.session.execute(
        insert(TokenRow).values(
            id=item.credential_id,
            name=credential_name(name, item.credential_id),
            role="gateway",
            secret_hash=hash_secret(item.secret),
            gateway_id=gateway_id,
            created_by=f"join:{item.token_id}",
        )
    )
    change.replace_object("gateway", old.name, new)  # a join changes nothing else: no reload
    change.record(
        "join",
        "gateway",
        old.name,
        {"public_key": old.public_key},
        {"public_key": new.public_key, "endpoint": new.endpoint},
        actor=f"join:{item.token_id}",
    )
    return old.name, format_token(item.credential_id, item.secret)


def credential_name(gateway: str, credential_id: str) -> str:
    """The gateway credential's token name (the actor in audit rows), within the 63 characters every
    database stores: a gateway named with 51 characters or more could otherwise never join."""
    name = f"gateway-{gateway}-{credential_id[:4]}"
    return name if len(name) <= 63 else f"gw-{gateway[:52]}-{credential_id[:6]}"


STRAY_ALLOWANCE = 256  # addresses outside the site's pools a gateway may still report (shown, never effective)


def announce_problems(topo: Topology, gateway: str, data: Announce) -> list[Problem]:
    """A gateway speaks only for its own site: into networks that site takes part in (a pool or a
    connection there), and no more addresses than its pools hold plus a small allowance for strays
    (a VM configured by hand outside the pool: shown as announced-not-effective, useful to see)."""
    if gateway not in topo.gateways:
        raise NotFound("gateway", gateway)  # deleted since its credential was checked
    site = topo.gateways[gateway].site
    pools = [p for p in topo.pools.values() if p.site == site and p.network == data.network]
    connected = any(c.network == data.network and site in (c.site_a, c.site_b) for c in topo.connections.values())
    if not pools and not connected:
        return [
            Problem(
                "network",
                f"site '{site}' has no pool and no connection in network '{data.network}'",
                "announce only into the networks of this gateway's document",
            )
        ]
    limit = sum(p.range.size for p in pools) + STRAY_ALLOWANCE
    if len(data.endpoints) > limit:
        return [
            Problem(
                "endpoints",
                f"{len(data.endpoints)} endpoints, but site '{site}' has room for {limit - STRAY_ALLOWANCE} in "
                f"'{data.network}' (plus {STRAY_ALLOWANCE} outside its pools)",
                "announce the addresses of this site's pools only",
            )
        ]
    return []


def announce(state: State, gateway: str, data: Announce) -> tuple[int, int, int, int]:
    """Replace what this gateway announces in one network. Returns (added, removed, changed, revision)."""
    snapshot = state.snapshot()
    topo = snapshot.topo
    if data.network not in topo.networks:
        raise NotFound("network", data.network)
    refuse(announce_problems(topo, gateway, data), "announcement")
    wanted = {IPv4Address(str(e.ip)): e.mac for e in data.endpoints}

    def difference(current: dict[IPv4Address, Announcement]) -> tuple[list[IPv4Address], ...]:
        added = [ip for ip in wanted if ip not in current]
        removed = [ip for ip in current if ip not in wanted]
        changed = [ip for ip in wanted if ip in current and current[ip].mac != wanted[ip]]
        return added, removed, changed

    if not any(difference(snapshot.index.announced.get((data.network, gateway), {}))):
        return 0, 0, 0, snapshot.revision
    now = state.clock()
    with state.write(f"gateway:{gateway}") as change:
        # against the state this write starts from (another write may have landed since the check)
        current = change.before.index.announced.get((data.network, gateway), {})
        added, removed, changed = difference(current)
        network_id = change.id_of("network", data.network)
        gateway_id = change.id_of("gateway", gateway)
        if removed:
            change.session.execute(
                delete(EndpointRow).where(
                    EndpointRow.network_id == network_id,
                    EndpointRow.gateway_id == gateway_id,
                    EndpointRow.ip.in_([str(ip) for ip in removed]),
                )
            )
        for ip in changed:
            change.session.execute(
                update(EndpointRow)
                .where(
                    EndpointRow.network_id == network_id,
                    EndpointRow.gateway_id == gateway_id,
                    EndpointRow.ip == str(ip),
                )
                .values(mac=wanted[ip], last_seen=now)
            )
        if added:
            change.session.execute(
                EndpointRow.__table__.insert(),
                [
                    {
                        "network_id": network_id,
                        "gateway_id": gateway_id,
                        "ip": str(ip),
                        "mac": wanted[ip],
                        "first_seen": now,
                        "last_seen": now,
                    }
                    for ip in added
                ],
            )
        index = change.before.index
        group = {ip: a for ip, a in current.items() if ip in wanted}
        effective_change = any(index.is_effective(current[ip]) for ip in removed)
        for ip in added + changed:
            first = current[ip].first_seen if ip in current else now
            group[ip] = new = Announcement(data.network, ip, gateway, wanted[ip], first, now)
            effective_change |= index.would_be_effective(new)
        # an announcement that changes nothing effective (addresses outside every pool) reaches no one
        change.replace_announcements(data.network, gateway, group, effective=effective_change)
        change.record(
            "announce",
            "endpoints",
            f"{gateway}/{data.network}",
            None,
            {
                "added": [str(i) for i in added][:50],
                "removed": [str(i) for i in removed][:50],
                "changed": [str(i) for i in changed][:50],
                "total": len(wanted),
            },
        )
    return len(added), len(removed), len(changed), change.revision


def heartbeat(state: State, gateway: str, data: Heartbeat) -> None:
    """Telemetry, not configuration: no revision bump, no audit row."""
    status: dict[str, Any] = data.model_dump()
    status["received_at"] = state.clock()
    with state.session() as session, session.begin():
        session.execute(
            update(GatewayRow)
            .where(GatewayRow.name == gateway)
            .values(last_seen=utcnow(), status=status, version=data.version)
        )
