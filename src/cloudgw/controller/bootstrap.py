"""First start of a controller: CA and server certificate, migrated database, first admin token."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from cloudgw.api.schemas import TokenCreate
from cloudgw.controller.db.engine import make_engine, migrate
from cloudgw.controller.db.models import TokenRow
from cloudgw.controller.gateway_calls import create_token
from cloudgw.controller.settings import ControllerSettings
from cloudgw.controller.state import State
from cloudgw.controller.tls import make_ca, make_server_cert
from cloudgw.files import write_private


@dataclass(frozen=True)
class Bootstrap:
    ca_fingerprint: str
    admin_token: str | None  # None when an admin token already existed
    names: list[str]


def initialise(
    settings: ControllerSettings, names: list[str] | None = None, token_file: str | Path | None = None
) -> Bootstrap:
    directory = Path(settings.data_dir)
    fingerprint = make_ca(directory)
    all_names = list(dict.fromkeys([*(names or []), "127.0.0.1", "localhost", socket.gethostname()]))
    make_server_cert(directory, all_names)
    engine = make_engine(settings.db)
    migrate(engine)
    state = State(engine, ca_fingerprint=fingerprint)
    with state.session() as session:
        has_admin = session.query(TokenRow).filter(TokenRow.role == "admin").count() > 0
    token = None
    if not has_admin:
        _, token = create_token(state, "init", TokenCreate(name="admin", role="admin"))
        if token_file is not None:
            write_private(token_file, token + "\n")
    engine.dispose()
    return Bootstrap(fingerprint, token, all_names)
