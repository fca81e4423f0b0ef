"""The audit log keeps the newest rows and drops old ones (controller settings audit_keep and
audit_days), the same on SQLite and PostgreSQL; nothing else is touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from cloudgw.controller.db.engine import make_engine, migrate
from cloudgw.controller.db.models import AuditRow
from cloudgw.controller.state import State
from tests import pg


def _fresh(backend, request, tmp_path):
    if backend.startswith("sqlite"):
        url = f"sqlite:///{tmp_path}/audit.db"
    else:
        url = pg.create_database(request.getfixturevalue("postgres"))  # its own: the count is exact
    engine = make_engine(url)
    migrate(engine)
    return State(engine)


def test_keep_the_newest_and_drop_the_old(backend, request, tmp_path):
    from cloudgw.api import schemas
    from cloudgw.controller.config_writes import operation

    state = _fresh(backend, request, tmp_path)
    for index in range(10):
        operation("sites", "create")(state, "admin", schemas.SiteCreate(name=f"s{index}"))

    def rows():
        with state.session() as session:
            return list(session.scalars(select(AuditRow.name).order_by(AuditRow.id)))

    assert state.prune_audit(0, 0) == 0 and len(rows()) == 10  # both off: nothing goes
    assert state.prune_audit(4, 0) == 6
    assert rows() == ["s6", "s7", "s8", "s9"]
    with state.session() as session, session.begin():
        session.execute(
            update(AuditRow).where(AuditRow.name.in_(["s6", "s7"])).values(at=datetime.now(UTC) - timedelta(days=400))
        )
    assert state.prune_audit(100, 365) == 2
    assert rows() == ["s8", "s9"]
    with state.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditRow)) == 2
    assert len(state.snapshot().topo.sites) == 10  # the topology is not the audit log
