"""The write path cannot be misused: after any sequence of writes (hypothesis), every gateway whose
rendered document changed was notified (its document revision bumped), and no other. Writes name no
gateways; who must hear of a write is derived (mapping/scope.py, then exact). No root needed."""

from __future__ import annotations

import base64
from ipaddress import IPv4Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cloudgw.api import schemas
from cloudgw.controller import config_writes, gateway_calls
from cloudgw.controller.db.engine import make_engine, migrate
from cloudgw.controller.db.models import PoolRow
from cloudgw.controller.state import State, UndeclaredWrite
from cloudgw.errors import CloudgwError
from cloudgw.mapping.documents import render_document

SITES = ["s0", "s1", "s2"]
NETS = {"n0": "10.0.0.0/24", "n1": "10.1.0.0/24"}
GATEWAYS = {"g0": "s0", "g1": "s1", "g2": "s2", "g3": "s0"}


def key(n: int) -> str:
    return base64.b64encode(bytes([n + 1]) * 32).decode()


def content(state: State) -> dict[str, object]:
    snap = state.snapshot()
    return {g: render_document(snap.topo, g, 0).model_dump() for g in snap.topo.gateways}


def revisions(state: State) -> dict[str, int]:
    return dict(state.snapshot().doc_revisions)


def op(state: State, choice: int, n: int) -> None:
    """One write, chosen by `choice`, its arguments by `n` (small domains, so writes collide)."""
    site, other = SITES[n % 3], SITES[(n // 3) % 3]
    net = list(NETS)[n % 2]
    gw = list(GATEWAYS)[n % 4]
    run = config_writes.operation
    base = 1 + 30 * SITES.index(site)
    prefix = f"10.{net[1]}.0"
    pool = schemas.PoolCreate(network=net, site=site, range=f"{prefix}.{base}-{prefix}.{base + 9}")
    resized = schemas.PoolUpdate(range=f"{prefix}.{base}-{prefix}.{base + n % 5}")
    lan = [f"10.0.0.{250 - n % 4}"]
    gateway = schemas.GatewayCreate(
        name=gw, site=GATEWAYS[gw], endpoint=f"203.0.113.{n % 9 + 1}:51820", lan_addresses=lan
    )
    moved = schemas.GatewayUpdate(endpoint=f"203.0.113.{n % 7 + 1}:51820")
    connection = schemas.ConnectionCreate(network=net, site_a=site, site_b=other)
    tuned = schemas.ConnectionUpdate(mtu=1380 + n % 40, enabled=n % 5 != 0)
    egress = schemas.EgressCreate(site=site, network=net, mode=["none", "local"][n % 2])
    forward = schemas.ForwardCreate(
        name=f"f{n % 3}",
        gateway=gw,
        protocol="tcp",
        public_port=8000 + n % 5,
        target_ip=f"10.0.0.{base}",
        target_port=80,
    )
    steps = [
        lambda: run("sites", "create")(state, "t", schemas.SiteCreate(name=site)),
        lambda: run("networks", "create")(state, "t", schemas.NetworkCreate(name=net, cidr=NETS[net])),
        lambda: run("pools", "create")(state, "t", pool),
        lambda: run("pools", "update")(state, "t", f"{site}-{net}", resized),
        lambda: run("gateways", "create")(state, "t", gateway),
        lambda: run("gateways", "update")(state, "t", gw, moved),
        lambda: run("connections", "create")(state, "t", connection),
        lambda: run("connections", "update")(state, "t", f"{site}-{other}-{net}", tuned),
        lambda: run("egress", "create")(state, "t", egress),
        lambda: run("forwards", "create")(state, "t", forward),
        lambda: join(state, gw, n),
        lambda: announce(state, gw, net, n),
        lambda: run("sites", "update")(state, "t", site, schemas.SiteUpdate(description=f"d{n}")),
        lambda: run("pools", "delete")(state, "t", f"{site}-{net}"),
        lambda: run("connections", "delete")(state, "t", f"{site}-{other}-{net}"),
        lambda: run("gateways", "delete")(state, "t", gw),
        lambda: run("sites", "delete")(state, "t", site, True),  # cascades: pools, gateways, connections
        lambda: run("networks", "delete")(state, "t", net, True),
    ]
    steps[choice % len(steps)]()


def join(state: State, gateway: str, n: int) -> None:
    row, _text = gateway_calls.create_token(
        state, "t", schemas.TokenCreate(name=f"j{n}-{gateway}", role="join", gateway=gateway)
    )
    gateway_calls.join(state, row.id, schemas.JoinRequest(public_key=key(n % 50)))


def announce(state: State, gateway: str, network: str, n: int) -> None:
    base = 1 + 30 * SITES.index(GATEWAYS[gateway])
    addresses = [IPv4Address(f"10.{network[1]}.0.{base + i}") for i in range(n % 4)]
    gateway_calls.announce(
        state, gateway, schemas.Announce(network=network, endpoints=[{"ip": str(a)} for a in addresses])
    )


# sites, networks, pools, two connections, three gateways joined
WORLD = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (2, 3), (6, 1), (6, 5)]
SEED = [*WORLD, (4, 0), (4, 1), (4, 2), (10, 0), (10, 1), (10, 2)]


@pytest.fixture
def fresh(tmp_path_factory):
    def make() -> State:
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('scope')}/state.db")
        migrate(engine)
        return State(engine)

    return make


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 17), st.integers(0, 999)), min_size=20, max_size=60))
def test_exactly_the_gateways_whose_document_changed_are_notified(fresh, writes):
    state = fresh()
    for choice, n in SEED:  # a world to start from, so most random writes land (some still collide)
        op(state, choice, n)
    for choice, n in writes:
        before, revs = content(state), revisions(state)
        try:
            op(state, choice, n)
        except CloudgwError:
            assert revisions(state) == revs  # a refused write notifies no one
            continue
        after, now = content(state), revisions(state)
        changed = {g for g in after if before.get(g) != after[g]}
        notified = {g for g in now if now[g] != revs.get(g)}
        assert changed == notified, (choice, n, changed, notified)
    state.engine.dispose()


def check_exact(state: State, choice: int, n: int) -> bool:
    """Run one write; True if it landed. Either way, exactly the changed documents were notified."""
    before, revs = content(state), revisions(state)
    try:
        op(state, choice, n)
    except CloudgwError:
        assert revisions(state) == revs  # a refused write notifies no one
        return False
    after, now = content(state), revisions(state)
    changed = {g for g in after if before.get(g) != after[g]}
    notified = {g for g in now if now[g] != revs.get(g)}
    assert changed == notified, (choice, n, changed, notified)
    return True


def test_every_kind_of_write_notifies_exactly(fresh):
    """Deterministic companion of the property test: each of the 18 writes lands at least once."""
    landed = []
    for choice in range(18):
        for start in (SEED, WORLD, []):  # creates of what a world already has land in a smaller one
            state = fresh()
            for seed_choice, n in start:
                op(state, seed_choice, n)
            if any(check_exact(state, choice, n) for n in range(12)):
                landed.append(choice)
                state.engine.dispose()
                break
            state.engine.dispose()
    assert landed == list(range(18))


def test_a_write_that_declares_nothing_is_refused(fresh):
    state = fresh()
    with pytest.raises(UndeclaredWrite), state.write("t") as change:
        change.session.execute(schemas_site_insert())
    assert state.snapshot().topo.sites == {}  # rolled back


def schemas_site_insert():
    from sqlalchemy import insert

    from cloudgw.controller.db.models import SiteRow

    return insert(SiteRow).values(name="sneaky", provider="generic", description="")


def test_every_write_path_declares_its_scope(fresh):
    """Every write function, run once: each leaves at least one audit row per revision."""
    state = fresh()
    for choice in range(18):
        for n in (0, 4, 13):
            try:
                op(state, choice, n)
            except CloudgwError:
                continue
    from sqlalchemy import func, select

    from cloudgw.controller.db.models import AuditRow

    with state.session() as session:
        audited = set(session.scalars(select(AuditRow.revision)))
        newest = session.scalar(select(func.max(AuditRow.revision)))
    assert newest == state.snapshot().revision and audited == set(range(1, newest + 1))


def test_a_hub_is_notified_without_being_rendered_inside_a_spokes_write(fresh):
    """A hub's document lists a peer per spoke: comparing it inside each spoke's join rendered it twice
    per join (1,000 joins took a minute). A hub among the candidates is notified without a render; its
    watch renders the new document once, and it is right."""
    from cloudgw.controller.state import EXACT_LIMIT
    from cloudgw.model.topologyfile import TopologyFile

    state = fresh()
    spokes = EXACT_LIMIT + 6
    sites = ["hub", *(f"s{i}" for i in range(spokes))]
    config_writes.apply_topology(
        state,
        "t",
        TopologyFile.model_validate(
            {
                "sites": [{"name": s} for s in sites],
                "networks": [{"name": "big", "cidr": "10.0.0.0/16"}],
                "pools": [
                    {"network": "big", "site": s, "range": f"10.0.{i}.1-10.0.{i}.9"} for i, s in enumerate(sites)
                ],
                "gateways": [
                    {"name": f"gw-{s}", "site": s, "endpoint": f"192.0.2.{i + 1}:51820"} for i, s in enumerate(sites)
                ],
                "connections": [{"network": "big", "site_a": "hub", "site_b": s} for s in sites[1:]],
            }
        ),
    )
    join(state, "gw-hub", 1)
    join(state, "gw-s0", 2)
    revs = revisions(state)
    join(state, "gw-s1", 3)
    now = revisions(state)
    # the hub hears of it; the spokes do not (their documents do not change; s1's own lists the hub only)
    assert {g for g in now if now[g] != revs[g]} == {"gw-hub"}
    cached = state._documents.get("gw-hub")
    assert cached is None or cached[0] < now["gw-hub"]  # not rendered by the write
    document = state.document("gw-hub")
    assert document.revision == now["gw-hub"] and {p.name for p in document.peers} == {"gw-s0", "gw-s1"}
    state.engine.dispose()


def test_a_replica_catches_up_with_joins_and_announcements_without_a_reload(fresh):
    """Two controllers on one database: the writes gateways make all day (joins, announcements) by
    one are applied to the other's snapshot from the audit log and those rows alone; the result is
    what a full load gives, documents included. Anything else (a config write) still reloads."""
    a = fresh()
    b = State(a.engine)
    for choice, n in WORLD:
        op(a, choice, n)
    for choice, n in [(4, 0), (4, 1), (4, 2)]:  # gateways g0, g1, g2
        op(a, choice, n)
    b.snapshot()  # b has a snapshot of its own now

    def must_not_reload(_session, _revision):
        raise AssertionError("reloaded the whole configuration")

    loaded = b._load
    b._load = must_not_reload
    join(a, "g0", 1)
    join(a, "g1", 2)
    announce(a, "g1", "n1", 3)
    announce(b, "g0", "n0", 2)  # b writes: it catches up with a's three writes first
    join(a, "g2", 3)
    announce(a, "g1", "n1", 1)

    def same_as_a_full_load(state: State) -> None:
        mine, truth = state.snapshot(), State(a.engine).snapshot()
        assert mine.revision == truth.revision
        assert mine.topo.gateways == truth.topo.gateways and mine.topo.announcements == truth.topo.announcements
        assert mine.doc_revisions == truth.doc_revisions
        for name in truth.topo.gateways:
            assert render_document(mine.topo, name, 0, mine.index) == render_document(truth.topo, name, 0)

    same_as_a_full_load(b)  # the follower's path (snapshot) caught up too
    b._load = loaded
    op(a, 12, 4)  # a site update: not something to catch up with
    b._load = must_not_reload
    with pytest.raises(AssertionError, match="reloaded"):
        b.snapshot()
    b._load = loaded
    same_as_a_full_load(b)
    a.engine.dispose()


def test_a_replica_catches_up_with_pool_creates_without_a_reload(fresh):
    """Pool creates through one replica (one per write, and several in one) are read by the other
    from those rows alone: its snapshot is what a full load gives (pools, ids, documents), and its
    overlap check sees them (a range on one of them is refused there)."""
    a = fresh()
    b = State(a.engine)
    for choice, n in [*WORLD, (4, 0), (4, 1), (4, 2)]:
        op(a, choice, n)
    b.snapshot()
    loaded = b._load

    def must_not_reload(_session, _revision):
        raise AssertionError("reloaded the whole configuration")

    b._load = must_not_reload
    create = config_writes.operation("pools", "create")
    create(a, "t", schemas.PoolCreate(name="extra0", network="n0", site="s1", range="10.0.0.200-10.0.0.209"))
    with a.write("t") as change:
        for i, site in ((1, "s0"), (2, "s2")):
            body = schemas.PoolCreate(name=f"extra{i}", network="n1", site=site, range=f"10.1.0.{192 + 16 * i}/29")
            config_writes.pool_create(change, body)
    mine, truth = b.snapshot(), State(a.engine).snapshot()
    assert mine.revision == truth.revision
    assert mine.topo.pools == truth.topo.pools and {"extra0", "extra1", "extra2"} <= set(mine.topo.pools)
    assert mine.ids["pool"] == truth.ids["pool"]
    for name in truth.topo.gateways:
        assert render_document(mine.topo, name, 0, mine.index) == render_document(truth.topo, name, 0)
    with pytest.raises(CloudgwError, match="overlaps pool 'extra2'"):
        create(b, "t", schemas.PoolCreate(name="clash", network="n1", site="s0", range="10.1.0.226"))
    create(b, "t", schemas.PoolCreate(name="fits", network="n1", site="s0", range="10.1.0.240/29"))
    assert "fits" in State(a.engine).snapshot().topo.pools
    b._load = loaded
    a.engine.dispose()


def test_remembered_credentials_outlive_only_writes_that_cannot_change_them(fresh):
    """`auth_generation` (what the credential cache and the streams compare) moves on writes that may
    change who is who (tokens, joins, gateways, sites) and on a reload, here and on a replica that
    catches up; pool creates, announcements and connections leave it. Before, every write here and
    every catch-up there dropped every remembered credential: with two replicas each request checked
    its token in the database again."""
    a = fresh()
    b = State(a.engine)
    for choice, n in [*WORLD, (4, 0), (4, 1)]:
        op(a, choice, n)
    b.snapshot()
    create = config_writes.operation("pools", "create")

    def generations() -> tuple[int, int]:
        b.snapshot()  # b catches up with whatever a wrote
        return a.auth_generation, b.auth_generation

    before = generations()
    create(a, "t", schemas.PoolCreate(name="more", network="n0", site="s1", range="10.0.0.200-10.0.0.209"))
    announce(a, "g1", "n1", 3)
    assert generations() == before
    create(b, "t", schemas.PoolCreate(name="more2", network="n1", site="s1", range="10.1.0.200-10.1.0.209"))
    a.snapshot()
    assert (a.auth_generation, b.auth_generation) == before  # the same the other way round
    for write in (
        lambda: gateway_calls.create_token(a, "t", schemas.TokenCreate(name="another", role="readonly")),
        lambda: join(a, "g0", 7),
        lambda: op(a, 12, 4),  # a site update: b reloads
    ):
        before = generations()
        write()
        after = generations()
        assert after[0] > before[0] and after[1] > before[1]
    a.engine.dispose()


def test_small_documents_are_made_on_the_event_loop_and_large_ones_are_not(fresh, monkeypatch):
    """The watch makes a spoke's document in place and leaves a large one to a worker thread: what it
    makes in place is the document a worker would make, and a document past the limit, a hub's, or
    one whose snapshot has no index yet is never made in place."""
    from cloudgw.controller import state as state_module

    a = fresh()
    for choice, n in [*WORLD, (4, 0), (4, 1), (4, 2), (10, 0), (10, 1), (10, 2)]:
        op(a, choice, n)
    announce(a, "g0", "n1", 3)  # s0 - s1 in n1: g1's document lists these 3
    snap = a.snapshot()
    unindexed = state_module.Snapshot(snap.topo, snap.doc_revisions, snap.ids)
    assert a.document_json_now("g1", unindexed) is None  # would build the index on the event loop
    snap.index  # noqa: B018 (built, as the watch's first worker-thread render builds it)
    remote = sum(len(n.remote_endpoints) for n in a.document("g1", snap).networks)
    assert remote >= 3
    for gateway in ("g0", "g1", "g2"):
        made = a.document_json_now(gateway, snap)
        assert made is not None and made == a.document_json(gateway, snap)
    b = State(a.engine)  # nothing cached yet
    snap = b.snapshot()
    snap.index  # noqa: B018
    monkeypatch.setattr(state_module, "INLINE_RENDER_LIMIT", remote - 1)
    assert b.document_json_now("g1", snap) is None
    monkeypatch.setattr(state_module, "INLINE_RENDER_LIMIT", remote)
    monkeypatch.setattr(state_module, "EXACT_LIMIT", 0)  # every connected site a hub
    assert b.document_json_now("g1", snap) is None
    monkeypatch.setattr(state_module, "EXACT_LIMIT", 64)
    made = b.document_json_now("g1", snap)
    assert made is not None and made == b.document_json("g1", snap)
    a.engine.dispose()


def test_a_large_document_is_paced_and_a_small_one_is_not(fresh, monkeypatch):
    """The watch waits before making a large document again (State.render_pause): at most once per
    RENDER_PACE times what it last took; a document made quickly is never paced."""
    import time

    from cloudgw.controller import state as state_module

    a = fresh()
    for choice, n in [*WORLD, (4, 0), (4, 1), (10, 0), (10, 1)]:
        op(a, choice, n)
    snap = a.snapshot()
    assert a.render_pause("g0") == 0.0  # never made
    a.document_json("g0", snap)
    assert a.render_pause("g0") == 0.0  # made in well under PACED_RENDER_S
    monkeypatch.setattr(state_module, "PACED_RENDER_S", 0.0)  # as if every document were large
    took = a._render_times["g0"][1]
    pause = a.render_pause("g0")
    assert 0.0 < pause <= state_module.RENDER_PACE * took
    deadline = time.monotonic() + 5
    while a.render_pause("g0") > 0 and time.monotonic() < deadline:
        time.sleep(0.001)  # the pause runs out on its own (a few milliseconds here)
    assert a.render_pause("g0") == 0.0
    a.engine.dispose()


def test_render_times_forget_deleted_gateways(fresh):
    """What each document took to make is kept per gateway, bounded like the document caches."""
    a = fresh()
    for choice, n in [*WORLD, (4, 0), (4, 1)]:
        op(a, choice, n)
    snap = a.snapshot()
    a._render_times.update({f"gone{i}": (0.0, 0.0) for i in range(100)})
    a.document_json("g0", snap)
    assert set(a._render_times) <= set(snap.topo.gateways)
    a.engine.dispose()


def test_a_create_carries_what_its_answer_needs_without_a_read(fresh):
    """The API answers a create from the row the write inserted and the snapshot it made (routes/
    crud.py `answer`); both must be what reading them back gives, or the answer would differ from
    a GET (tests/contract/test_crud.py compares the two over HTTP)."""
    state = fresh()
    for choice, n in WORLD:
        op(state, choice, n)
    created = config_writes.creation("pools")(
        state, "t", schemas.PoolCreate(name="answered", network="n0", site="s1", range="10.0.0.230-10.0.0.239")
    )
    snap = state.cached_snapshot(created.revision)
    assert snap is not None and snap.revision == created.revision == state.db_revision()
    (row,) = [r for r in created.rows if getattr(r, "name", None) == "answered"]
    assert created.obj == snap.topo.pools["answered"]
    with state.session() as session:
        stored = session.scalars(select(PoolRow).where(PoolRow.name == "answered")).one()
        assert (row.id, row.first, row.last) == (stored.id, stored.first, stored.last)
        assert row.created_at.replace(tzinfo=None) == stored.created_at.replace(tzinfo=None)
        assert row.updated_at.replace(tzinfo=None) == stored.updated_at.replace(tzinfo=None)
    # a later write replaces the snapshot: the answer then reads back (crud.answer's fallback)
    config_writes.operation("pools", "create")(
        state, "t", schemas.PoolCreate(name="later", network="n0", site="s1", range="10.0.0.240-10.0.0.241")
    )
    assert state.cached_snapshot(created.revision).revision == created.revision + 1
    state.engine.dispose()
