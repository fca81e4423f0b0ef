"""What gateway agents call. The gateway is always the one the credential belongs to."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, StreamingResponse

from cloudgw.api import schemas
from cloudgw.controller import auth, gateway_calls, roles
from cloudgw.controller.state import State
from cloudgw.errors import NotFound, Unauthorized

router = APIRouter(prefix="/api/v1/agent", tags=["agent"])


@router.get("/ca", response_class=PlainTextResponse, summary="The controller's CA certificate (public)")
async def ca_certificate(request: Request) -> Any:
    # on the event loop (a small file, from the page cache): every join asks for it first, and a
    # worker thread's hand-off cost more than the read
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


STREAM_TYPE = "application/x-ndjson"


@router.get("/document", summary="Watch this gateway's document: returns when its revision passes `after`")
async def document(
    request: Request,
    after: int = Query(-1),
    wait: float = Query(25.0, ge=0, le=120),
    questions: bool = Query(False, description="also return the controller's questions (202: QuestionList)"),
    stream: bool = Query(
        False,
        description="keep the response open: one line per newer document (NDJSON), a line of questions "
        '({"questions": [...]}) when asked, and an empty line after `wait` seconds of silence',
    ),
    state: State = Depends(auth.get_state),
    who: auth.Principal = Depends(auth.gateway),
) -> Any:
    assert who.gateway is not None
    if stream:
        lines = _stream(request, state, who, after, max(wait, 1.0), questions)
        return StreamingResponse(lines, media_type=STREAM_TYPE, headers={"Cache-Control": "no-store"})
    bus = request.app.state.bus
    deadline = time.monotonic() + wait
    waited = False
    while True:
        snapshot = await _current(request, state, who.gateway)
        revision = snapshot.doc_revisions[who.gateway]
        if revision > after:
            body = await _document_body(request, state, who.gateway, snapshot, deadline, waited)
            if body is None:
                waited = True
                continue  # paced: look again for whatever is newest
            return Response(body, media_type="application/json", headers={"X-Cloudgw-Revision": str(revision)})
        if questions and request.app.state.questions.pending(who.gateway):
            body = _questions(request, who.gateway)
            return Response(body, status_code=202, media_type="application/json")
        left = deadline - time.monotonic()
        if left <= 0:
            return Response(status_code=204, headers={"X-Cloudgw-Revision": str(revision)})
        waited = True
        if bus.revision > snapshot.revision:
            continue  # a commit landed since the snapshot was read: its wake-up is already gone
        await _wait(request, min(left, 1.0))


async def _stream(
    request: Request, state: State, who: auth.Principal, after: int, keepalive: float, questions: bool
) -> AsyncIterator[bytes]:
    """The streamed watch: every newer document as one line on one response, so a change costs the
    controller one write per gateway, not a response and a new request (at 1,000 gateways the
    request's parsing, routing and checks were as much as the document). The credential is checked
    again whenever credentials may have changed and at least as often as a remembered one is; the
    stream ends when it is refused (revoked, expired, or checks throttled at this address) or the
    gateway is deleted, and the agent's reconnect is then answered with the reason."""
    assert who.gateway is not None
    bus = request.app.state.bus
    sent, generation = after, state.auth_generation
    quiet_since = checked_at = time.monotonic()
    keepalive *= random.uniform(0.8, 1.0)  # streams opened together do not all speak together
    yield b"\n"  # at once: the agent knows it is connected before anything changes
    while True:
        try:
            snapshot = await _current(request, state, who.gateway)
        except Unauthorized:
            return  # deleted: the reconnect says so
        revision = snapshot.doc_revisions[who.gateway]
        if state.auth_generation != generation or time.monotonic() - checked_at > auth.AUTH_CACHE_SECONDS:
            generation, checked_at = state.auth_generation, time.monotonic()
            if not await auth.still_valid(request, state):
                return  # revoked or expired: the reconnect is refused with the reason
        if revision > sent:
            body = await _document_body(request, state, who.gateway, snapshot, None, True)
            if body is not None:
                yield body + b"\n"
                sent, quiet_since = revision, time.monotonic()
            continue
        if questions and request.app.state.questions.pending(who.gateway):
            yield _questions(request, who.gateway) + b"\n"
            quiet_since = time.monotonic()
            continue
        silent = time.monotonic() - quiet_since
        if silent >= keepalive:
            yield b"\n"  # both ends learn the connection still works
            quiet_since = time.monotonic()
            continue
        if bus.revision > snapshot.revision:
            continue
        # No look once a second, as a long-poll does (1,000 streams: 1,000 wake-ups a second for
        # nothing). The bus loses no wake-up here (the check above and this wait run on the loop
        # with nothing in between); a new snapshot from another replica or a question wakes it too.
        await _wait(request, keepalive - silent)


async def _current(request: Request, state: State, gateway: str) -> Any:
    """The newest snapshot that knows this gateway. The in-memory one is current: every commit in
    this process replaces it, and another replica's commits arrive through the app's once-a-second
    poll (which a waiter would wait for anyway). So no pass costs a database round trip: after a
    change, every gateway's re-poll read the revision from the database (a quarter of the
    controller's busy time at 1,000 gateways). Only a process without a snapshot yet reads it, or
    one that does not know the gateway yet (created through another replica)."""
    snapshot = state.cached_snapshot(request.app.state.bus.revision)
    if snapshot is None or gateway not in snapshot.doc_revisions:
        snapshot = await run_in_threadpool(state.snapshot)
    if gateway not in snapshot.doc_revisions:
        raise Unauthorized("this gateway no longer exists", status=403)
    return snapshot


async def _document_body(
    request: Request, state: State, gateway: str, snapshot: Any, deadline: float | None, waited: bool
) -> bytes | None:
    """The gateway's document, or None after a pause: a large document made a moment ago is made
    again only after a pause (State.render_pause), then for whatever is newest."""
    body = state.document_json_now(gateway, snapshot)  # cached or small: no thread hop
    if body is None:
        pause = state.render_pause(gateway)
        if deadline is not None:
            pause = min(pause, deadline - time.monotonic())
        if pause > 0:
            await asyncio.sleep(pause)
            return None
        body = await run_in_threadpool(state.document_json, gateway, snapshot)
    published = request.app.state.bus.published_at(snapshot.doc_revisions[gateway]) if waited else None
    if published is not None:
        request.app.state.watch_metrics.delivery.observe(time.monotonic() - published)
    return body


def _questions(request: Request, gateway: str) -> bytes:
    asked = request.app.state.questions.take(gateway)
    return (
        schemas.QuestionList(questions=[schemas.PathQuestion(id=q.id, **q.body) for q in asked])
        .model_dump_json()
        .encode()
    )


async def _wait(request: Request, seconds: float) -> None:
    """Until the next commit (or a question), at most `seconds`: a wake-up lost for any reason costs
    at most that long, never the whole long-poll."""
    waiting = request.app.state.watch_metrics.waiting
    waiting.inc()
    try:
        await request.app.state.bus.wait(seconds)
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
