"""The State's snapshot cache under concurrent readers and writers."""

from __future__ import annotations

from cloudgw.api import schemas
from cloudgw.controller import config_writes
from cloudgw.controller.db.engine import make_engine, migrate
from cloudgw.controller.state import State


def test_a_reader_with_an_older_revision_never_replaces_a_newer_snapshot(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/state.db")
    migrate(engine)
    state = State(engine)
    state.snapshot()
    create_site = config_writes.operation("sites", "create")
    create_site(state, "test", schemas.SiteCreate(name="s1"))
    newest = state.snapshot()
    # a reader whose session read the revision just before that write committed
    stale = newest.revision - 1
    state.db_revision = lambda session=None: stale  # type: ignore[method-assign]
    assert state.snapshot() is newest
    assert state.known_revision == newest.revision
    del state.db_revision
    create_site(state, "test", schemas.SiteCreate(name="s2"))  # the next write starts from the cache
    assert set(state.snapshot().topo.sites) == {"s1", "s2"}
    engine.dispose()


def test_a_write_that_only_creates_builds_the_snapshot_a_reload_would(tmp_path):
    """Creates of sites, networks and pools skip the reload (its cost grows with the topology): the
    snapshot they leave must equal what loading the database gives, ids included, and later writes
    (an update by name, a delete) must find what they created."""
    from cloudgw.controller.state import Change, load_config

    engine = make_engine(f"sqlite:///{tmp_path}/state.db")
    migrate(engine)
    state = State(engine)
    with state.write("test") as change:
        config_writes.site_create(change, schemas.SiteCreate(name="a"))
        config_writes.network_create(change, schemas.NetworkCreate(name="n", cidr="10.0.0.0/16", mode="l2"))
        assert change.creates_only
    for i in range(3):
        with state.write("test") as change:
            body = schemas.PoolCreate(name=f"p{i}", network="n", site="a", range=f"10.0.{i}.16/28")
            config_writes.pool_create(change, body)
            assert change.creates_only
    with state.session() as session:
        topo, _revisions, ids = load_config(session)
    snap = state.snapshot()
    for collection in Change.COLLECTIONS.values():
        assert getattr(snap.topo, collection) == getattr(topo, collection), collection
    assert {kind: names for kind, names in snap.ids.items() if names} == {k: v for k, v in ids.items() if v}
    with state.write("test") as change:
        config_writes.pool_update(change, "p1", schemas.PoolUpdate(range="10.0.1.32/28"))
        assert not change.creates_only
    with state.write("test") as change:
        config_writes.pool_delete(change, "p2")
    assert set(state.snapshot().topo.pools) == {"p0", "p1"}
    assert str(state.snapshot().topo.pools["p1"].range) == "10.0.1.32-10.0.1.47"
    engine.dispose()
