"""`POST /api/v1/explain`: why can (or can't) SRC reach DST, hop by hop (mapping/explain.py)."""

from __future__ import annotations

import time
from ipaddress import IPv4Address
from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select

from cloudgw.api import schemas
from cloudgw.controller import auth, views
from cloudgw.controller.db.models import GatewayRow
from cloudgw.controller.questions import Questions
from cloudgw.controller.state import State
from cloudgw.mapping.explain import GatewayReport, PeerSeen, explain, kernel_hops
from cloudgw.model.defaults import TUNNEL_INTERFACE
from cloudgw.model.topology import Topology

router = APIRouter(prefix="/api/v1", tags=["status"])


def gateway_reports(state: State, offline_after: float, now: float) -> dict[str, GatewayReport]:
    names: dict[str, str] = {}
    reports = {}
    snap = state.snapshot()
    for gateway in snap.topo.gateways.values():
        if gateway.public_key:
            names[gateway.public_key] = gateway.name
    with state.session() as session:
        rows = list(session.scalars(select(GatewayRow)))
    for row in rows:
        status, bad = views.stored_heartbeat(row)
        seen = views._aware(row.last_seen)
        reports[row.name] = GatewayReport(
            name=row.name,
            online=views.online(row, offline_after, now),
            seen_age_s=round(now - seen.timestamp(), 1) if seen is not None else None,
            applied_revision=status.revision,
            doc_revision=row.doc_revision,
            peers=tuple(PeerSeen(p.public_key, p.last_handshake, tuple(p.allowed_ips)) for p in status.peers),
            path_warnings={p.peer: p.warning for p in status.paths if p.warning},
            path_mtu={p.peer: p.mtu for p in status.paths},
            problems={p.peer: p.problem for p in status.problems},
            last_error=bad or status.last_error,
            counters=dict(status.counters),
        )
    return reports


@router.post("/explain", response_model=schemas.ExplainResult, summary="Why can SRC reach DST or not, hop by hop")
def explain_path(
    body: schemas.ExplainRequest,
    request: Request,
    state: State = Depends(auth.get_state),
    _who: auth.Principal = Depends(auth.reader),
) -> Any:
    started = time.perf_counter()
    now = time.time()
    reports = gateway_reports(state, float(request.app.state.settings.offline_after), now)
    topo = state.snapshot().topo
    src, dst = IPv4Address(str(body.src)), IPv4Address(str(body.dst))
    result = explain(topo, reports, src, dst, body.network, now)
    if result.gateways is not None and result.network is not None:
        asked = ask_both(request.app.state.questions, topo, result.network, result.gateways, (src, dst), reports)
        for (gateway, target), (answer, ms) in asked.items():
            known = topo.gateways[gateway].public_key
            baseline = reports[gateway].counters  # as of its last heartbeat
            result.add(kernel_hops(gateway, target, answer, baseline, TUNNEL_INTERFACE, known, ms))
    return {**result.as_dict(), "took_ms": round((time.perf_counter() - started) * 1000, 1)}


ANSWER_DEADLINE_S = 2.0


def ask_both(
    questions: Questions,
    topo: Topology,
    network: str,
    gateways: tuple[str, str],
    addresses: tuple[IPv4Address, IPv4Address],
    reports: dict[str, GatewayReport],
) -> dict[tuple[str, IPv4Address], tuple[dict[str, Any] | None, float | None]]:
    """Each gateway is asked about its side (the other side's address and gateway), at once; the
    answers are awaited together, up to ANSWER_DEADLINE_S. An offline gateway is not asked (it is a
    finding already)."""
    cidr = topo.networks[network].cidr
    asked = []
    for (local, remote), target in zip((gateways, gateways[::-1]), addresses[::-1], strict=True):
        report = reports.get(local)
        if report is None or not report.online:
            continue
        other = topo.gateways[remote]
        body = {
            "target": str(target),
            "peer": remote,
            "peer_key": other.public_key,
            "probe": next((str(a) for a in other.lan_addresses if a in cidr), None),
            "mtu": report.path_mtu.get(remote, 1420),
        }
        asked.append(((local, target), questions.ask(local, body)))
    deadline = time.monotonic() + ANSWER_DEADLINE_S
    for _, question in asked:
        question.done.wait(max(0.0, deadline - time.monotonic()))
    return {key: (question.answer, question.took_ms) for key, question in asked}
