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
