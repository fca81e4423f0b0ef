"""Joins that wait for the write lock are written together (gateway_calls._JoinQueue): each is
checked as if alone, a refused one refuses nobody else, and each audit row names its own token."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from cloudgw.agent.keys import generate_private_key, public_key_of
from cloudgw.api import schemas
from cloudgw.controller import gateway_calls
from cloudgw.controller.config_writes import apply_topology
from cloudgw.controller.db.engine import make_engine, migrate
from cloudgw.controller.db.models import AuditRow
from cloudgw.controller.state import State
from cloudgw.errors import InvalidInput, Unauthorized
from cloudgw.model.tokens import parse_token
from cloudgw.model.topologyfile import TopologyFile
from tests.helpers import wait_for
from tests.sim.harness import topology


@pytest.fixture
def world(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/state.db")
    migrate(engine)
    state = State(engine)
    apply_topology(state, "t", TopologyFile.model_validate(topology(6)))
    yield state
    engine.dispose()


def token(state: State, gateway: str, name: str) -> str:
    text = gateway_calls.create_token(state, "t", schemas.TokenCreate(name=name, role="join", gateway=gateway))[1]
    return parse_token(text).id


def test_waiting_joins_are_written_together_each_as_if_alone(world):
    state = world
    names = [f"gw-s{i:04d}" for i in range(6)]
    tokens = {n: token(state, n, f"j-{n}") for n in names}
    used = token(state, names[5], "j-used")
    keys = {n: public_key_of(generate_private_key()) for n in names}
    keys[names[4]] = keys[names[3]]  # gw-s0004 tries gw-s0003's key: refused, alone
    keys["again"] = public_key_of(generate_private_key())
    gateway_calls.join(state, used, schemas.JoinRequest(public_key=public_key_of(generate_private_key())))
    before = state.snapshot().revision
    queue = gateway_calls._QUEUES[state]
    results: dict[str, object] = {}

    def attempt(name: str, token_id: str) -> None:
        try:
            results[name] = gateway_calls.join(state, token_id, schemas.JoinRequest(public_key=keys[name]))
        except Exception as exc:
            results[name] = exc

    jobs = [(n, tokens[n]) for n in names[:5]] + [("again", used)]
    with queue.writer:  # a write in progress: every join below queues behind it
        threads = [threading.Thread(target=attempt, args=job) for job in jobs]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(queue.pending) == len(jobs), 10, what="every join to queue")
    for thread in threads:
        thread.join(timeout=30)
    assert isinstance(results["again"], Unauthorized)  # its token was used before
    refused = [n for n in names[3:5] if isinstance(results[n], InvalidInput)]
    assert len(refused) == 1  # whichever came second of the two with one key
    joined = [n for n in names[:5] if isinstance(results[n], tuple)]
    assert sorted(joined + refused) == names[:5] and len(joined) == 4
    snap = state.snapshot()
    assert snap.revision == before + 1  # one write for all of them
    assert all(snap.topo.gateways[n].public_key == keys[n] for n in joined)
    assert snap.topo.gateways[refused[0]].public_key is None
    with state.session() as session:
        actors = dict(
            session.execute(
                select(AuditRow.name, AuditRow.actor).where(
                    AuditRow.action == "join", AuditRow.revision == snap.revision
                )
            ).all()
        )
    assert actors == {n: f"join:{tokens[n]}" for n in joined}


def test_a_batch_the_database_refuses_is_written_one_by_one(world, monkeypatch):
    """A join the checks let through but the database refuses (here: made to fail) fails alone."""
    state = world
    names = [f"gw-s{i:04d}" for i in range(3)]
    tokens = {n: token(state, n, f"j-{n}") for n in names}
    real = gateway_calls._join_one

    def flaky(change, item):
        if item.token_id == tokens[names[1]]:
            raise RuntimeError("the database said no")
        return real(change, item)

    monkeypatch.setattr(gateway_calls, "_join_one", flaky)
    queue = gateway_calls._QUEUES.setdefault(state, gateway_calls._JoinQueue())
    results: dict[str, object] = {}

    def attempt(name: str) -> None:
        try:
            results[name] = gateway_calls.join(
                state, tokens[name], schemas.JoinRequest(public_key=public_key_of(generate_private_key()))
            )
        except Exception as exc:
            results[name] = exc

    with queue.writer:
        threads = [threading.Thread(target=attempt, args=(n,)) for n in names]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(queue.pending) == len(names), 10, what="every join to queue")
    for thread in threads:
        thread.join(timeout=30)
    assert isinstance(results[names[1]], RuntimeError)
    assert all(isinstance(results[n], tuple) for n in (names[0], names[2]))
    joined = {n for n, g in state.snapshot().topo.gateways.items() if g.public_key}
    assert joined == {names[0], names[2]}
