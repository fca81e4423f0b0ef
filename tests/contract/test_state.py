"""The State's snapshot cache under concurrent readers and writers."""

from __future__ import annotations

import pytest

from cloudgw.api import schemas
from cloudgw.controller import config_writes
from cloudgw.controller.db.engine import make_engine, migrate
from cloudgw.controller.state import State
from cloudgw.errors import InvalidInput


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


def test_the_overlap_check_sees_every_pool_a_write_left_whatever_the_path(tmp_path):
    """Pool creates carry the snapshot's pool index forward (no reload); updates and deletes reload it.
    After each kind of write, a range overlapping any pool that exists is refused, and one that
    overlaps only a deleted pool or the old range of an updated one is accepted."""
    engine = make_engine(f"sqlite:///{tmp_path}/state.db")
    migrate(engine)
    state = State(engine)
    with state.write("test") as change:
        config_writes.site_create(change, schemas.SiteCreate(name="a"))
        config_writes.network_create(change, schemas.NetworkCreate(name="n", cidr="10.0.0.0/16"))
    for i in range(4):  # one pool per write, then two in one write
        with state.write("test") as change:
            config_writes.pool_create(
                change, schemas.PoolCreate(name=f"p{i}", network="n", site="a", range=f"10.0.{i}.16/28")
            )
    with state.write("test") as change:
        for i in (4, 5):
            config_writes.pool_create(
                change, schemas.PoolCreate(name=f"p{i}", network="n", site="a", range=f"10.0.{i}.16/28")
            )
        with pytest.raises(InvalidInput, match="overlaps pool 'p4'"):  # the same write's own create
            config_writes.pool_create(change, schemas.PoolCreate(name="x", network="n", site="a", range="10.0.4.20"))
    with state.write("test") as change:
        config_writes.pool_update(change, "p1", schemas.PoolUpdate(range="10.0.1.64/28"))
    with state.write("test") as change:
        config_writes.pool_delete(change, "p2")

    def create(name: str, where: str) -> None:
        with state.write("test") as change:
            config_writes.pool_create(change, schemas.PoolCreate(name=name, network="n", site="a", range=where))

    for i, where in ((0, "10.0.0.20"), (1, "10.0.1.70"), (3, "10.0.3.31"), (5, "10.0.5.16")):
        with pytest.raises(InvalidInput, match=f"overlaps pool 'p{i}'"):
            create(f"q{i}", where)
    create("on-p1s-old-range", "10.0.1.20")
    create("on-deleted-p2", "10.0.2.20")
    with pytest.raises(InvalidInput, match="overlaps pool 'on-p1s-old-range'"):
        create("again", "10.0.1.16/28")
    engine.dispose()
