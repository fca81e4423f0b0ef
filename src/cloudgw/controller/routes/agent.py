"""What gateway agents call. The gateway is always the one the credential belongs to."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from cloudgw.api import schemas
from cloudgw.controller import auth, gateway_calls, roles
from cloudgw.controller.state import State
from cloudgw.errors import NotFound, Unauthorized

router = APIRouter(prefix="/api/v1/agent", tags=["agent"])


@router.get("/ca", response_class=PlainTextResponse, summary="The controller's CA certificate (public)")
def ca_certificate(request: Request) -> Any:
    path = request.app.state.ca_path
    if path is None or not Path(path).exists():
        raise NotFound("CA certificate", "ca.pem")
    return PlainTextResponse(Path(path).read_text(), media_type="application/x-pem-file")


@router.post("/join", response_model=schemas.JoinResponse, summary="Trade a one-time join token for a credential")
def join(
    body: schemas.JoinRequest, state: State = Depends(auth.get_state), who: auth.Principal = Depends(auth.joiner)
) -> Any:
    gateway, credential = gateway_calls.join(state, who.token_id, body)
    return schemas.JoinResponse(gateway=gateway, credential=credential)


@router.get("/document", summary="Watch this gateway's document: returns when its revision passes `after`")
async def document(
    request: Request,
    after: int = Query(-1),
    wait: float = Query(25.0, ge=0, le=120),
    questions: bool = Query(False, description="also return the controller's questions (202: QuestionList)"),
    state: State = Depends(auth.get_state),
    who: auth.Principal = Depends(auth.gateway),
) -> Any:
    bus = request.app.state.bus
    deadline = time.monotonic() + wait
    assert who.gateway is not None
    waited = False
    while True:
        # The in-memory snapshot is current: every commit in this process replaces it, and another
        # replica's commits arrive through the app's once-a-second poll (which a waiter would wait
        # for anyway). So no pass costs a database round trip, not even the first: after a change,
        # every gateway's re-poll read the revision from the database (a quarter of the controller's
        # busy time at 1,000 gateways). Only a process without a snapshot yet reads it, or one that
        # does not know the gateway yet (created through another replica).
        snapshot = state.cached_snapshot(bus.revision)
        if snapshot is None or who.gateway not in snapshot.doc_revisions:  # (created through another replica?)
            snapshot = await run_in_threadpool(state.snapshot)
        revision = snapshot.doc_revisions.get(who.gateway)
        if revision is None:
            raise Unauthorized("this gateway no longer exists", status=403)
        if revision > after:
            body = state.document_json_now(who.gateway, snapshot)  # cached or small: no thread hop
            if body is None:
                pause = min(state.render_pause(who.gateway), deadline - time.monotonic())
                if pause > 0:  # a large document made a moment ago: wait, then make the newest
                    waited = True
                    await asyncio.sleep(pause)
                    continue
                body = await run_in_threadpool(state.document_json, who.gateway, snapshot)
            published = bus.published_at(revision) if waited else None
            if published is not None:
                request.app.state.watch_metrics.delivery.observe(time.monotonic() - published)
            return Response(body, media_type="application/json", headers={"X-Cloudgw-Revision": str(revision)})
        if questions and request.app.state.questions.pending(who.gateway):
            asked = request.app.state.questions.take(who.gateway)
            body = schemas.QuestionList(questions=[schemas.PathQuestion(id=q.id, **q.body) for q in asked])
            return Response(body.model_dump_json(), status_code=202, media_type="application/json")
        left = deadline - time.monotonic()
        if left <= 0:
            return Response(status_code=204, headers={"X-Cloudgw-Revision": str(revision)})
        waited = True
        if bus.revision > snapshot.revision:
            continue  # a commit landed since the snapshot was read: its wake-up is already gone
        # Woken at the next commit; and at least once a second look again anyway (in memory), so
        # a wake-up lost for any reason costs at most a second, never the whole long-poll.
        waiting = request.app.state.watch_metrics.waiting
        waiting.inc()
        try:
            await bus.wait(min(left, 1.0))
        finally:
            waiting.dec()


@router.post("/answers/{question_id}", status_code=204, response_class=Response, summary="Answer a question")
def answer(
    question_id: str,
    body: schemas.PathAnswer,
    request: Request,
    who: auth.Principal = Depends(auth.gateway),
) -> Response:
    assert who.gateway is not None
    if not request.app.state.questions.answer(who.gateway, question_id, body.model_dump(mode="json")):
        raise NotFound("question", question_id[:40])
    return Response(status_code=204)


@router.put("/endpoints", response_model=schemas.AnnounceResult, summary="Replace what this gateway announces")
def announce(
    body: schemas.Announce, state: State = Depends(auth.get_state), who: auth.Principal = Depends(auth.gateway)
) -> Any:
    assert who.gateway is not None
    added, removed, changed, revision = gateway_calls.announce(state, who.gateway, body)
    return schemas.AnnounceResult(added=added, removed=removed, changed=changed, revision=revision)


@router.post("/heartbeat", status_code=204, response_class=Response, summary="Health and statistics of this gateway")
def heartbeat(
    request: Request,
    body: schemas.Heartbeat,
    state: State = Depends(auth.get_state),
    who: auth.Principal = Depends(auth.gateway),
) -> Response:
    assert who.gateway is not None
    gateway_calls.heartbeat(state, who.gateway, body)
    request.app.state.telemetry.record(who.gateway, body.peers, time.time())
    return Response(status_code=204)


@router.post("/role", response_model=schemas.RoleAnswer, summary="Ask for, renew or leave the site's active role")
def role(
    body: schemas.RoleRequest,
    request: Request,
    state: State = Depends(auth.get_state),
    who: auth.Principal = Depends(auth.gateway),
) -> Any:
    """An HA pair's lease (docs/ha.md): granted when no other gateway of the site holds it."""
    assert who.gateway is not None
    answer = roles.request_role(state, who.gateway, body)
    if answer.reason and answer.granted:
        request.app.state.watch_metrics.role_changes.labels(role=answer.role).inc()
    return answer
