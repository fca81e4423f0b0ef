"""The one mutation path. Every configuration write goes through a `State` method: one transaction
that validates (model.rules), writes, records an audit row, bumps the revision and marks which
gateways' documents changed. Routes, CLI and dashboard never touch tables.

Reads that need relations (documents, the mapping, validation) use a `Snapshot`: the topology as
plain values, cached per revision. A replica that sees a newer revision in the database reloads it,
so several controllers can share one PostgreSQL database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv4Network
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import Engine, String, bindparam, delete, insert, literal, select, union_all, update
from sqlalchemy.orm import Session, sessionmaker

from cloudgw.controller.db.models import (
    AuditRow,
    BurstRow,
    BurstVmRow,
    CloudEndpointRow,
    ConnectionRow,
    EgressRow,
    EndpointRow,
    ForwardRow,
    GatewayRow,
    MetaRow,
    NetworkRow,
    PoolRow,
    SiteRow,
)
from cloudgw.errors import InvalidInput, NotFound, Problem
from cloudgw.logs import log_event
from cloudgw.mapping.documents import render_document
from cloudgw.mapping.index import TopologyIndex
from cloudgw.mapping.listing import EndpointListing
from cloudgw.mapping.scope import candidates
from cloudgw.model.addr import AddressRange
from cloudgw.model.burst import BurstSpec
from cloudgw.model.cloud import cloud_gateway, items_from_json
from cloudgw.model.document import GatewayDocument
from cloudgw.model.spans import PoolSpans
from cloudgw.model.topology import (
    Announcement,
    Announcements,
    CloudInventory,
    Connection,
    Egress,
    Forward,
    Gateway,
    Network,
    Pool,
    Site,
    Topology,
    ha_from_json,
)

log = logging.getLogger("cloudgw.controller")


@dataclass
class Snapshot:
    topo: Topology
    doc_revisions: dict[str, int] = field(default_factory=dict)
    ids: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> name -> row id
    doc_reasons: dict[str, str] = field(default_factory=dict)  # gateway -> why its document last changed
    names: dict[str, dict[int, str]] = field(default_factory=dict)  # kind -> row id -> name

    _index: TopologyIndex | None = field(default=None, repr=False, compare=False)
    _index_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _sorted: dict[str, list[Any]] = field(default_factory=dict, repr=False, compare=False)
    _pool_spans: PoolSpans | None = field(default=None, repr=False, compare=False)

    @property
    def pool_spans(self) -> PoolSpans:
        """The pools indexed for overlap checks: built once, then carried from snapshot to snapshot by
        the writes that do not reload (a pool create adds its pool). Only writers read it, under the
        write lock; never changed once published (a write adds to its own copy)."""
        if self._pool_spans is None:
            self._pool_spans = PoolSpans(self.topo.pools.values())
        return self._pool_spans

    def in_order(self, collection: str) -> list[Any]:
        """A collection's objects sorted by name, once per snapshot: list pages filter this in
        order instead of sorting every request."""
        found = self._sorted.get(collection)
        if found is None:
            items = getattr(self.topo, collection)
            found = [items[name] for name in sorted(items)]
            self._sorted[collection] = found  # a race computes the same list twice, harmlessly
        return found

    @property
    def revision(self) -> int:
        return self.topo.revision

    @property
    def index(self) -> TopologyIndex:
        """Built on first use, once (every watcher woken by a change asks at the same moment); a
        snapshot never changes, so neither does its index."""
        if self._index is None:
            with self._index_lock:
                if self._index is None:
                    self._index = TopologyIndex.build(self.topo)
        return self._index


def burst_from_row(row: BurstRow, network_names: dict[int, str], site_names: dict[int, str]) -> BurstSpec:
    """A stored policy: its name, network and site from the row's columns (they follow renames)."""
    return BurstSpec.model_validate(
        {**row.spec, "name": row.name, "network": network_names[row.network_id], "site": site_names[row.site_id]}
    )


def burst_to_row_spec(spec: BurstSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude={"name", "network", "site"})


def load_config(session: Session) -> tuple[Topology, dict[str, int], dict[str, dict[str, int]]]:
    """Everything but the announcements."""
    topo = Topology()
    ids: dict[str, dict[str, int]] = {
        "site": {},
        "network": {},
        "gateway": {},
        "pool": {},
        "connection": {},
        "egress": {},
        "forward": {},
        "burst": {},
    }
    site_names: dict[int, str] = {}
    for row in session.scalars(select(SiteRow)):
        topo.sites[row.name] = Site(
            row.name,
            row.provider,
            row.description,
            items_from_json(row.cloud),
            ha_from_json(row.ha),
            row.kind,
            tuple(IPv4Network(prefix) for prefix in row.routed or []),
            IPv4Address(row.routed_via) if row.routed_via else None,
        )
        ids["site"][row.name] = row.id
        site_names[row.id] = row.name
    network_names: dict[int, str] = {}
    for nrow in session.scalars(select(NetworkRow)):
        topo.networks[nrow.name] = Network(
            nrow.name, IPv4Network(nrow.cidr), nrow.mode, nrow.description, bool(nrow.flood)
        )
        ids["network"][nrow.name] = nrow.id
        network_names[nrow.id] = nrow.name
    doc_revisions = {}
    for grow in session.scalars(select(GatewayRow)):
        topo.gateways[grow.name] = gateway_from_row(grow, site_names[grow.site_id])
        ids["gateway"][grow.name] = grow.id
        doc_revisions[grow.name] = grow.doc_revision
    for prow in session.scalars(select(PoolRow)):
        topo.pools[prow.name] = Pool(
            prow.name,
            network_names[prow.network_id],
            site_names[prow.site_id],
            AddressRange(IPv4Address(prow.first), IPv4Address(prow.last)),
        )
        ids["pool"][prow.name] = prow.id
    for crow in session.scalars(select(ConnectionRow)):
        topo.connections[crow.name] = Connection(
            crow.name,
            network_names[crow.network_id],
            site_names[crow.site_a_id],
            site_names[crow.site_b_id],
            crow.enabled,
            crow.mtu,
            crow.keepalive,
        )
        ids["connection"][crow.name] = crow.id
    for erow in session.scalars(select(EgressRow)):
        site, network = site_names[erow.site_id], network_names[erow.network_id]
        name = f"{site}-{network}"
        via = site_names[erow.via_site_id] if erow.via_site_id is not None else None
        topo.egress[name] = Egress(name, site, network, erow.mode, via)
        ids["egress"][name] = erow.id
    gateway_names = {v: k for k, v in ids["gateway"].items()}
    for frow in session.scalars(select(ForwardRow)):
        topo.forwards[frow.name] = Forward(
            frow.name,
            gateway_names[frow.gateway_id],
            frow.protocol,
            frow.public_port,
            IPv4Address(frow.target_ip),
            frow.target_port,
        )
        ids["forward"][frow.name] = frow.id
    for brow in session.scalars(select(BurstRow)):
        try:
            topo.bursts[brow.name] = burst_from_row(brow, network_names, site_names)
        except ValidationError as exc:  # a row written by hand or by a future version: never fatal
            log_event(log, "burst.unreadable", level=logging.WARNING, policy=brow.name, error=str(exc).splitlines()[0])
            continue
        ids["burst"][brow.name] = brow.id
    listed: dict[tuple[str, str], list[tuple[IPv4Address, str | None]]] = {}
    for irow in session.scalars(select(CloudEndpointRow)):
        key = (site_names[irow.site_id], network_names[irow.network_id])
        listed.setdefault(key, []).append((IPv4Address(irow.ip), irow.mac))
    # burst VMs are in the mapping from the moment their address is chosen, before they boot: the
    # site's gateway announces them with its cloud's VMs
    for vrow in session.scalars(select(BurstVmRow)):
        key = (site_names[vrow.site_id], network_names[vrow.network_id])
        address = IPv4Address(vrow.ip)
        if all(ip != address for ip, _ in listed.get(key, [])):
            listed.setdefault(key, []).append((address, None))
    for (site, network), endpoints in listed.items():
        name = f"{site}/{network}"
        gateway = cloud_gateway(topo, site)
        topo.inventory[name] = CloudInventory(name, site, network, gateway, tuple(sorted(endpoints)))
    return topo, doc_revisions, ids


def gateway_from_row(grow: GatewayRow, site: str) -> Gateway:
    return Gateway(
        grow.name,
        site,
        grow.endpoint,
        grow.public_key,
        grow.wan_interface,
        grow.lan_interface,
        tuple(IPv4Address(a) for a in grow.lan_addresses or []),
        grow.listen_port,
        grow.priority,
        grow.role,
        grow.role_epoch,
    )


def load_announcements(session: Session, ids: dict[str, dict[str, int]]) -> dict[Any, Announcement]:
    networks = {v: k for k, v in ids["network"].items()}
    gateways = {v: k for k, v in ids["gateway"].items()}
    result = {}
    rows = session.execute(
        select(
            EndpointRow.network_id,
            EndpointRow.ip,
            EndpointRow.gateway_id,
            EndpointRow.mac,
            EndpointRow.first_seen,
            EndpointRow.last_seen,
        )
    )
    for network_id, ip, gateway_id, mac, first_seen, last_seen in rows:
        network, gateway, address = networks[network_id], gateways[gateway_id], IPv4Address(ip)
        result[(network, address, gateway)] = Announcement(network, address, gateway, mac, first_seen, last_seen)
    return result


class Change:
    """What one write did: passed to the code inside State.write()."""

    COLLECTIONS = {
        "site": "sites",
        "network": "networks",
        "pool": "pools",
        "gateway": "gateways",
        "connection": "connections",
        "egress": "egress",
        "forward": "forwards",
        "burst": "bursts",
        "inventory": "inventory",
    }

    def __init__(self, session: Session, snapshot: Snapshot, revision: int) -> None:
        self.session = session
        self.before = snapshot
        self.revision = revision
        self.affected: set[str] = set()  # derived at commit (scope.candidates, then exact): never set by hand
        self.audit: list[tuple[str, str, str, dict[str, Any] | None, dict[str, Any] | None]] = []
        self.actors: dict[int, str] = {}  # audit row -> its own actor, where not the write's
        self.announcements: Mapping[Any, Announcement] | None = None  # set when they changed
        # (network, gateway) -> what it now announces, when replace_announcements() made the change
        self.groups: dict[tuple[str, str], dict[IPv4Address, Announcement]] = {}
        self.effective_groups: set[tuple[str, str]] = set()  # groups whose effective addresses changed
        self.stale = False  # an update or delete happened: refresh() must reload from the database
        # A private working copy: the snapshot is shared with readers and must not change.
        self.working = Topology(
            **{**vars(snapshot.topo), **{c: dict(getattr(snapshot.topo, c)) for c in self.COLLECTIONS.values()}}
        )
        self.ids = {kind: dict(names) for kind, names in snapshot.ids.items()}
        self._spans: PoolSpans | None = None  # the working copy's pools indexed, once asked for
        self._spans_owned = False  # _spans is this change's own copy (else the snapshot's, read-only)
        self._reloaded = False  # refresh() replaced the working copy with the database's
        self.inserted: list[Any] = []  # the rows its creates added (a create's answer is made from them)

    def record(
        self, action: str, kind: str, name: str, before: Any = None, after: Any = None, actor: str | None = None
    ) -> None:
        """Declare what this write changed: the audit row, the reason that travels to the gateways,
        and (derived from it at commit) how the next snapshot is built and who must hear of it.
        `actor`: who did this part, when a write makes several callers' changes (batched joins)."""
        if actor is not None:
            self.actors[len(self.audit)] = actor
        self.audit.append((action, kind, name, before, after))
        if action in ("update", "delete"):
            self.stale = True

    # what the records say, derived once (State.write reads these; nothing sets them by hand)
    @property
    def config_changed(self) -> bool:
        """The configuration changed: the next snapshot is loaded from the database."""
        return any(kind in CONFIG_KINDS and action not in IN_PLACE for action, kind, *_ in self.audit)

    @property
    def creates_only(self) -> bool:
        """Only new sites, networks and pools: the working copy holds them with their ids (Change.add)
        and nothing is derived from them at load time, so the next snapshot needs no reload (a
        reload's cost grows with the topology: 300 ms per pool create at 10,000 pools)."""
        return bool(self.audit) and all(
            action == "create" and kind in CREATED_IN_PLACE for action, kind, *_ in self.audit
        )

    @property
    def gateways_changed(self) -> bool:
        """Only joins and role changes: the working copy holds the new gateways, no reload."""
        return not self.config_changed and any(action in IN_PLACE for action, *_ in self.audit)

    @property
    def auth_neutral(self) -> bool:
        """Nothing that can change who is who (see auth_neutral): remembered credentials stay."""
        return auth_neutral((action, kind) for action, kind, *_ in self.audit)

    @property
    def reason(self) -> str:
        """What happened, in a few words: the audit's actions, sent with the documents it changed."""
        parts = [f"{action} {kind} {name}" for action, kind, name, *_ in self.audit[:3]]
        more = len(self.audit) - 3
        return "; ".join(parts) + (f" and {more} more" if more > 0 else "")

    def replace_object(self, kind: str, name: str, obj: Any) -> None:
        """An object of the working topology changed in place (a join's key and address)."""
        getattr(self.working, self.COLLECTIONS[kind])[name] = obj

    @property
    def topo(self) -> Topology:
        return self.working

    def add(self, kind: str, name: str, obj: Any, row: Any) -> None:
        self.session.add(row)
        self.created(kind, name, row, obj)

    def created(self, kind: str, name: str, row: Any, obj: Any) -> None:
        """A create: its row gets an id, and the working topology holds it, with no reload."""
        self.session.flush()
        self.inserted.append(row)
        self.ids.setdefault(kind, {})[name] = row.id
        if kind == "pool":
            spans = self.pool_spans
            if not self._spans_owned:
                self._spans, self._spans_owned = spans.copy(), True
                spans = self._spans
            spans.add(obj)
        getattr(self.working, self.COLLECTIONS[kind])[name] = obj

    @property
    def pool_spans(self) -> PoolSpans:
        """The working topology's pools indexed (rules.check_pool's `spans`): the snapshot's, until this
        change creates a pool (then its own copy) or reloads (then built from what it loaded)."""
        if self._spans is None:
            if self._reloaded:
                self._spans, self._spans_owned = PoolSpans(self.working.pools.values()), True
            else:
                self._spans = self.before.pool_spans
        return self._spans

    @property
    def carried_spans(self) -> PoolSpans | None:
        """The next snapshot's pool index, when that snapshot is this working copy (no reload)."""
        if self._reloaded:
            return None
        return self._spans if self._spans is not None else self.before._pool_spans

    def replace_announcements(
        self, network: str, gateway: str, group: dict[IPv4Address, Announcement], effective: bool = True
    ) -> None:
        """This gateway now announces exactly `group` in this network. (The next snapshot's index is
        then derived from this one's, not rebuilt.) `effective`: whether the effective mapping
        changed; if not, no gateway's document can have."""
        if effective:
            self.effective_groups.add((network, gateway))
        current = Announcements.of(self.announcements if self.announcements is not None else self.topo.announcements)
        self.announcements = current.with_group(network, gateway, group)  # the other groups are shared
        self.groups[(network, gateway)] = group

    def refresh(self) -> None:
        """Between the steps of a multi-step change: after an update or delete (renames ripple through
        references) reload the working topology, so the next step is validated against it."""
        self.session.flush()
        if not self.stale:
            return
        topo, _doc_revisions, ids = load_config(self.session)
        announcements = self.announcements if self.announcements is not None else self.before.topo.announcements
        topo.announcements = {
            k: a for k, a in announcements.items() if a.network in topo.networks and a.gateway in topo.gateways
        }
        topo.revision = self.before.revision
        self.working, self.ids, self.stale = topo, ids, False
        self._reloaded, self._spans, self._spans_owned = True, None, False

    def id_of(self, kind: str, name: str) -> int:
        row_id = self.ids.get(kind, {}).get(name)
        if row_id is None:
            raise NotFound(kind, name)
        return row_id


CONFIG_KINDS = frozenset(Change.COLLECTIONS)
IN_PLACE = ("join", "role")  # writes that replace gateways in the working copy (Change.replace_object)
CREATED_IN_PLACE = frozenset({"site", "network", "pool"})  # creates the working copy holds as loading would
EXACT_LIMIT = 64  # up to this many candidate gateways, documents are compared to notify exactly
CATCH_UP_ACTIONS = frozenset({*IN_PLACE, "announce"})  # another replica's writes applied without a reload
# Audit kinds whose writes cannot change a credential or whom it names: tokens name a gateway, and a
# gateway goes with its site. A kind not listed here (a new one too) counts as changing credentials.
AUTH_NEUTRAL_KINDS = frozenset(
    {"endpoints", "pool", "network", "connection", "egress", "forward", "burst", "inventory"}
)
PACED_RENDER_S = 0.02  # a document that took longer to make is paced (State.render_pause)
RENDER_PACE = 4.0  # ... made at most once per this many times what it took: a fifth of the time at most
INLINE_RENDER_LIMIT = 2000  # remote endpoints: a document with fewer is made on the event loop
CATCH_UP_LIMIT = 256  # revisions; further behind, a reload is cheaper than reading that many groups


class UndeclaredWrite(RuntimeError):
    """A write that recorded nothing: a programming error, refused before it commits."""


# A catch-up's reads (State._catch_up). One round trip: the audit rows since a revision and, marked
# by an empty action (no audit row has one), the gateways whose documents changed since.
_SINCE = union_all(
    select(AuditRow.revision, AuditRow.action, AuditRow.kind, AuditRow.name).where(
        AuditRow.revision > bindparam("since"), AuditRow.revision <= bindparam("upto")
    ),
    select(GatewayRow.doc_revision, literal("", String), literal("", String), GatewayRow.name).where(
        GatewayRow.doc_revision > bindparam("since")
    ),
)
_POOLS_NAMED = (
    select(PoolRow.id, PoolRow.name, NetworkRow.name, SiteRow.name, PoolRow.first, PoolRow.last)
    .join(NetworkRow, PoolRow.network_id == NetworkRow.id)
    .join(SiteRow, PoolRow.site_id == SiteRow.id)
    .where(PoolRow.name.in_(bindparam("names", expanding=True)))
)


def auth_neutral(writes: Iterable[tuple[str, str]]) -> bool:
    """Whether these (action, kind) audit entries leave every credential as it was: HA role changes
    and the kinds in AUTH_NEUTRAL_KINDS."""
    return all(kind in AUTH_NEUTRAL_KINDS or action == "role" for action, kind in writes)


def _content(doc: GatewayDocument) -> GatewayDocument:
    return doc.model_copy(update={"revision": 0, "reason": None})


def refuse(problems: list[Problem], what: str) -> None:
    if problems:
        raise InvalidInput(problems, what=what)


T = TypeVar("T")


def _latest(cache: dict[str, tuple[int, T]], snap: Snapshot, gateway: str, revision: int, make: Callable[[], T]) -> T:
    """One cached value per gateway, for its newest revision (bounded by the number of gateways)."""
    entry = cache.get(gateway)
    if entry is not None and entry[0] == revision:
        return entry[1]
    value = make()
    if entry is None or entry[0] < revision:
        cache[gateway] = (revision, value)
        _forget_deleted(cache, snap)
    return value


def _forget_deleted(cache: dict[str, Any], snap: Snapshot) -> None:
    """A per-gateway cache stays bounded by the number of gateways: deleted ones are dropped."""
    if len(cache) > len(snap.topo.gateways) + 64:
        for name in [name for name in cache if name not in snap.topo.gateways]:
            cache.pop(name, None)


class State:
    def __init__(
        self,
        engine: Engine,
        publish: Callable[[int], None] | None = None,
        ca_fingerprint: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.publish = publish or (lambda _revision: None)
        self.ca_fingerprint = ca_fingerprint
        self.clock = clock
        self._lock = threading.RLock()
        self._snapshot: Snapshot | None = None
        # the newest document of each gateway only: an older revision is never asked for again
        # bumped by every write that may change who is who (all but announcements) and whenever a
        # snapshot is reloaded after another process wrote: remembered credentials are dropped
        self.auth_generation = 0
        self._documents: dict[str, tuple[int, GatewayDocument]] = {}
        self._document_json: dict[str, tuple[int, bytes]] = {}
        self._render_times: dict[str, tuple[float, float]] = {}  # gateway -> (made at, took), monotonic
        self.endpoint_listing = EndpointListing()  # sorted runs of the mapping, for pages of it

    # reads ------------------------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def db_revision(self, session: Session | None = None) -> int:
        if session is not None:
            return int(session.scalar(select(MetaRow.revision).where(MetaRow.id == 1)) or 0)
        with self.session() as own:
            return self.db_revision(own)

    def prune_audit(self, keep: int, days: float) -> int:
        """Delete audit rows beyond the newest `keep` and older than `days` (0 turns either off).
        Returns how many went. Every replica may run it: it is idempotent."""
        removed = 0
        with self.session() as session, session.begin():
            if keep > 0:
                cutoff = session.scalar(select(AuditRow.id).order_by(AuditRow.id.desc()).offset(keep).limit(1))
                if cutoff is not None:
                    removed += session.execute(delete(AuditRow).where(AuditRow.id <= cutoff)).rowcount or 0
            if days > 0:
                oldest = datetime.now(UTC) - timedelta(days=days)
                removed += session.execute(delete(AuditRow).where(AuditRow.at < oldest)).rowcount or 0
        return removed

    def snapshot(self) -> Snapshot:
        cached = self._snapshot
        with self.session() as session:
            revision = self.db_revision(session)
            if cached is not None and cached.revision >= revision:
                return cached
            with self._lock:
                # A write may have landed since this session read the revision: its snapshot is
                # newer and stays. Replacing it with this older one made every later write and
                # reader rebuild everything from the database (seen at 1,000 gateways).
                if self._snapshot is not None and self._snapshot.revision >= revision:
                    return self._snapshot
                self._snapshot = self._newer(session, self._snapshot, revision)
                return self._snapshot

    def _load(self, session: Session, revision: int) -> Snapshot:
        topo, doc_revisions, ids = load_config(session)
        topo.announcements = load_announcements(session, ids)
        topo.revision = revision
        return Snapshot(topo, doc_revisions, ids)

    def _catch_up(self, session: Session, snap: Snapshot, revision: int) -> tuple[Snapshot, bool] | None:
        """Another replica's writes since `snap`, applied to it, when they were all joins, role
        changes, announcements, tokens (what gateways do all day) and pool creates: the audit log says
        which gateways, endpoint groups and pools they touched, and only those rows are read. With
        two replicas every write found the other's before it and reloaded the whole configuration
        (10,000 sites: most of a join's time). None when anything else happened, or too much, or
        the audit was pruned. With the snapshot: whether those writes were all auth-neutral."""
        if not 0 < revision - snap.revision <= CATCH_UP_LIMIT:
            return None
        # statements made once, run on the session's connection: building them and the ORM's
        # execution path cost more than these indexed reads themselves
        connection = session.connection()
        found = connection.execute(_SINCE, {"since": snap.revision, "upto": revision}).all()
        rows = [row for row in found if row[1]]
        documents = [(name, doc_revision) for doc_revision, action, _, name in found if not action]
        if {r for r, _, _, _ in rows} != set(range(snap.revision + 1, revision + 1)):
            return None
        # tokens are no part of the topology (the caller forgets remembered credentials)
        if any(
            action not in CATCH_UP_ACTIONS and kind != "token" and (action, kind) != ("create", "pool")
            for _, action, kind, _ in rows
        ):
            return None
        names = {name for _, action, _, name in rows if action in IN_PLACE}
        pools = {name for _, action, kind, name in rows if (action, kind) == ("create", "pool")}
        groups = {tuple(name.split("/", 1)) for _, action, _, name in rows if action == "announce"}
        topo = Topology(**vars(snap.topo))
        topo.gateways = dict(snap.topo.gateways)
        for grow in session.scalars(select(GatewayRow).where(GatewayRow.name.in_(names))) if names else ():
            old = topo.gateways.get(grow.name)
            if old is None:
                return None
            topo.gateways[grow.name] = gateway_from_row(grow, old.site)
        ids, spans = snap.ids, snap._pool_spans
        if pools:  # pool creates (an admin's, or a file's, through the other replica): those rows only
            topo.pools, ids = dict(snap.topo.pools), {**snap.ids, "pool": dict(snap.ids.get("pool", {}))}
            spans = spans.copy() if spans is not None else None
            for row_id, name, network, site, first, last in connection.execute(_POOLS_NAMED, {"names": list(pools)}):
                if network not in topo.networks or site not in topo.sites:
                    return None
                pool = Pool(name, network, site, AddressRange(IPv4Address(first), IPv4Address(last)))
                topo.pools[name] = pool
                ids["pool"][name] = row_id
                if spans is not None:
                    spans.add(pool)
            if not pools <= topo.pools.keys():
                return None  # created and deleted since: a reload says what is there
        index: TopologyIndex | None = None  # new pools: built from them on first use
        if not pools:
            index = snap.index.with_gateways(topo.gateways[n] for n in names) if names else snap.index
        if groups:
            topo.announcements = dict(snap.topo.announcements)
            for gateway, network in groups:
                gateway_id, network_id = snap.ids["gateway"].get(gateway), snap.ids["network"].get(network)
                if gateway_id is None or network_id is None:
                    return None
                for ip in snap.index.announced.get((network, gateway), {}):
                    topo.announcements.pop((network, ip, gateway), None)
                group: dict[IPv4Address, Announcement] = {}
                for ip, mac, first_seen, last_seen in connection.execute(
                    select(EndpointRow.ip, EndpointRow.mac, EndpointRow.first_seen, EndpointRow.last_seen).where(
                        EndpointRow.network_id == network_id, EndpointRow.gateway_id == gateway_id
                    )
                ):
                    address = IPv4Address(ip)
                    group[address] = Announcement(network, address, gateway, mac, first_seen, last_seen)
                    topo.announcements[(network, address, gateway)] = group[address]
                if index is not None:
                    index = index.with_announcements(network, gateway, group)
        topo.revision = revision
        doc_revisions = dict(snap.doc_revisions)
        doc_revisions.update(documents)
        caught_up = Snapshot(topo, doc_revisions, ids, dict(snap.doc_reasons))
        caught_up._index = index
        caught_up._pool_spans = spans
        return caught_up, auth_neutral((action, kind) for _, action, kind, _ in rows)

    def _newer(self, session: Session, snap: Snapshot | None, revision: int) -> Snapshot:
        """The state at `revision`: `snap` caught up when it can be, else loaded. Remembered
        credentials are forgotten unless every write in between was auth-neutral (a pool create
        through another replica made every request here check its token in the database again)."""
        caught_up = self._catch_up(session, snap, revision) if snap is not None else None
        if caught_up is None or not caught_up[1]:
            self.auth_generation += 1  # another process wrote: it may have changed tokens
        return caught_up[0] if caught_up is not None else self._load(session, revision)

    @property
    def known_revision(self) -> int:
        """The newest revision this process has written or read (no database round trip)."""
        cached = self._snapshot
        return cached.revision if cached is not None else -1

    def cached_snapshot(self, at_least: int) -> Snapshot | None:
        """The in-memory snapshot if it is at least this revision (no database round trip; safe on
        the event loop), else None. Watchers woken by a local change use this."""
        cached = self._snapshot
        return cached if cached is not None and cached.revision >= at_least else None

    def document(self, gateway: str, snap: Snapshot | None = None) -> GatewayDocument:
        snap = snap or self.snapshot()
        if gateway not in snap.topo.gateways:
            raise NotFound("gateway", gateway)
        revision = snap.doc_revisions.get(gateway, 0)

        def make() -> GatewayDocument:
            document = render_document(snap.topo, gateway, revision, snap.index)
            reason = snap.doc_reasons.get(gateway)
            return document.model_copy(update={"reason": reason}) if reason else document

        return _latest(self._documents, snap, gateway, revision, make)

    def document_json(self, gateway: str, snap: Snapshot | None = None) -> bytes:
        """The document as JSON, serialised once per revision (the watch feed's body)."""
        snap = snap or self.snapshot()
        if gateway not in snap.topo.gateways:
            raise NotFound("gateway", gateway)
        revision = snap.doc_revisions.get(gateway, 0)

        def make() -> bytes:
            started = time.monotonic()
            cached = self._documents.get(gateway)
            document = cached[1] if cached and cached[0] == revision else None
            document = document or self.document(gateway, snap)
            made = document.model_dump_json(exclude_none=True).encode()
            finished = time.monotonic()
            self._render_times[gateway] = (finished, finished - started)
            _forget_deleted(self._render_times, snap)
            return made

        return _latest(self._document_json, snap, gateway, revision, make)

    def render_pause(self, gateway: str) -> float:
        """How long the watch should wait before making this gateway's document again: a large
        document (a hub's: a peer per spoke) is made at most once per RENDER_PACE times what it last
        took. While 1,000 spokes joined, each join changed the hub's document and its re-poll had it
        made again, up to ten times a second at ~100 ms each; paced, the hub gets the newest document
        a little later and the joins the time. Zero for documents that take under 20 ms."""
        last = self._render_times.get(gateway)
        if last is None or last[1] < PACED_RENDER_S:
            return 0.0
        finished, took = last
        return max(0.0, finished + RENDER_PACE * took - time.monotonic())

    def document_json_now(self, gateway: str, snap: Snapshot) -> bytes | None:
        """The document's JSON when it costs next to nothing here, on the event loop: already
        serialised, or small (a spoke's: ~100 remote endpoints, well under a millisecond). None when
        it must be made in a worker thread (a hub's takes 200 ms; a snapshot without its index yet
        would build it, seconds at 100,000 endpoints). At 1,000 gateways the thread hop cost more
        than a spoke's render (a fifth of the controller's time during a change)."""
        revision = snap.doc_revisions.get(gateway)
        cached = self._document_json.get(gateway)
        if cached is not None and cached[0] == revision:
            return cached[1]
        index = snap._index
        if index is None or gateway not in snap.topo.gateways:
            return None
        site = index.site_of.get(gateway, "")
        connections = index.connections_by_site.get(site, ())
        if len(connections) > EXACT_LIMIT:
            return None
        remote = 0
        for connection in connections:
            other = connection.other(site)
            if other in index.external:
                remote += sum(p.range.size for p in index.pools_by_site.get((connection.network, other), ()))
            remote += len(index.effective.get((connection.network, other), ()))
            if remote > INLINE_RENDER_LIMIT:
                return None
        return self.document_json(gateway, snap)

    # the write path ---------------------------------------------------------------------------
    def _notified(self, before: Snapshot, after: Snapshot, change: Change, revision: int) -> set[str]:
        """The gateways whose document this write changed: the scope's candidates, and when they are
        few, only those whose rendered document really differs (their new documents are cached, the
        watch feed sends them next). Many candidates (a hub's network) are all notified: comparing
        would hold the write lock for a render each; so is a hub among few candidates."""
        touched = (  # a write that only creates, joins or changes roles knows every object it changed
            [(Change.COLLECTIONS[kind], name) for _action, kind, name, *_ in change.audit if kind in Change.COLLECTIONS]
            if change.creates_only or change.gateways_changed
            else None
        )
        # the indexes answer who neighbours whom from per-site lists, where both are already made
        near = (before._index, after._index) if before._index is not None and after._index is not None else None
        found = candidates(before.topo, after.topo, change.effective_groups, touched, near)
        if len(found) > EXACT_LIMIT:
            return found
        exact = set()
        for name in found:
            site = after.topo.gateways[name].site
            if len(after.index.connections_by_site.get(site, ())) > EXACT_LIMIT:
                # a hub: its document lists a peer per connection and every remote endpoint; rendering
                # it twice inside every spoke's join or announcement made 1,000 joins take a minute
                # (O(n^2)). It is notified; its next watch renders it once, for whatever is newest.
                exact.add(name)
                continue
            new = render_document(after.topo, name, revision, after.index)
            old = self.document(name, before) if name in before.topo.gateways else None
            if old is None or _content(old) != _content(new):
                exact.add(name)
                self._documents[name] = (revision, new.model_copy(update={"reason": change.reason}))
        return exact

    @contextmanager
    def write(self, actor: str) -> Iterator[Change]:
        """One transaction: bump the revision first (this serialises writers, across replicas too),
        run the caller's validation and writes, then mark documents and audit, then commit."""
        with self._lock:
            with self.session() as session, session.begin():
                revision = int(
                    session.execute(
                        update(MetaRow)
                        .where(MetaRow.id == 1)
                        .values(revision=MetaRow.revision + 1)
                        .returning(MetaRow.revision)
                    ).scalar_one()
                )
                snapshot = self._snapshot
                if snapshot is None or snapshot.revision != revision - 1:
                    snapshot = self._newer(session, snapshot, revision - 1)
                change = Change(session, snapshot, revision)
                yield change
                if not change.audit:
                    raise UndeclaredWrite("a write must declare what it changed (Change.record)")
                session.flush()
                if change.config_changed and not change.creates_only:
                    topo, doc_revisions, ids = load_config(session)
                    announcements = (
                        change.announcements if change.announcements is not None else snapshot.topo.announcements
                    )
                    topo.announcements = {
                        k: a
                        for k, a in announcements.items()
                        if a.network in topo.networks and a.gateway in topo.gateways
                    }
                else:
                    # a join changes one gateway's key and address in the working copy, a create
                    # adds an object to it: no reload
                    base = change.working if change.gateways_changed or change.creates_only else snapshot.topo
                    topo = Topology(
                        **{
                            **vars(base),
                            "announcements": change.announcements
                            if change.announcements is not None
                            else snapshot.topo.announcements,
                        }
                    )
                    doc_revisions = dict(snapshot.doc_revisions)
                    ids = change.ids if change.creates_only else snapshot.ids
                topo.revision = revision
                new_snapshot = Snapshot(topo, doc_revisions, ids, dict(snapshot.doc_reasons))
                if not change.config_changed or change.creates_only:
                    new_snapshot._pool_spans = change.carried_spans
                if not change.config_changed and not change.gateways_changed and change.groups:
                    index = snapshot.index
                    for (network, gateway), group in change.groups.items():
                        index = index.with_announcements(network, gateway, group)
                    new_snapshot._index = index
                elif change.gateways_changed and not change.groups and snapshot._index is not None:
                    replaced = {name for action, kind, name, *_ in change.audit if action in IN_PLACE}
                    derived = snapshot._index.with_gateways(topo.gateways[n] for n in replaced if n in topo.gateways)
                    if derived is not None:
                        new_snapshot._index = derived
                affected = self._notified(snapshot, new_snapshot, change, revision)
                change.affected = affected
                if affected:
                    session.execute(  # a new document is not an edit of the gateway: updated_at stays
                        update(GatewayRow)
                        .where(GatewayRow.name.in_(affected))
                        .values(doc_revision=revision, updated_at=GatewayRow.updated_at),
                        execution_options={"synchronize_session": False},  # no write reads it back
                    )
                    for name in affected:
                        doc_revisions[name] = revision
                        new_snapshot.doc_reasons[name] = change.reason
                session.execute(  # one statement, not the unit of work's flush of an object per row
                    insert(AuditRow),
                    [
                        {
                            "actor": change.actors.get(row, actor),
                            "action": action,
                            "kind": kind,
                            "name": name,
                            "before": before,
                            "after": after,
                            "revision": revision,
                        }
                        for row, (action, kind, name, before, after) in enumerate(change.audit)
                    ],
                )
            # still under the lock: a reader that finds the new revision in the database must find
            # this snapshot too, or it rebuilds everything from the database (seen at 1,000 gateways)
            self._snapshot = new_snapshot
            if not change.auth_neutral:
                self.auth_generation += 1
        self.publish(revision)
        for row, (action, kind, name, _, _) in enumerate(change.audit):
            log_event(
                log,
                "state.changed",
                actor=change.actors.get(row, actor),
                action=action,
                kind=kind,
                name=name,
                rev=revision,
                gateways=len(affected),
            )
