"""The FastAPI application: wiring only."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from cloudgw import __version__
from cloudgw.api import schemas
from cloudgw.controller.auth import AuthFailures, PrincipalCache
from cloudgw.controller.burstloop import BurstLoop
from cloudgw.controller.bus import RevisionBus
from cloudgw.controller.cloudsync import CloudSync
from cloudgw.controller.db.engine import make_engine, migrate
from cloudgw.controller.headers import SecurityHeaders
from cloudgw.controller.limits import RequestGuard
from cloudgw.controller.metrics import registry
from cloudgw.controller.questions import Questions
from cloudgw.controller.routes import (
    admin,
    agent,
    burst,
    explain,
    external,
    mapping,
    overview,
    providers,
    topology,
    web,
)
from cloudgw.controller.routes.config import routers
from cloudgw.controller.settings import ControllerSettings
from cloudgw.controller.state import State
from cloudgw.controller.telemetry import Telemetry
from cloudgw.controller.tls import CA_CERT, fingerprint
from cloudgw.errors import InvalidInput, NotFound, Problem, Unauthorized
from cloudgw.logs import log_event
from cloudgw.memory import Trimmer
from cloudgw.model.textio import pydantic_problems
from cloudgw.providers.registry import provider_for

log = logging.getLogger("cloudgw.controller")
REPLICA_POLL_S = 1.0  # how soon a change committed by another replica reaches this one's watchers
PROVIDER_GAP_S = 1.0  # the provider reconciler's passes are at least this far apart (changes come in bursts)


def _problems_body(error: str, problems: list[Problem]) -> dict[str, Any]:
    return {"error": error, "problems": [p.as_dict() for p in problems]}


def create_app(settings: ControllerSettings, state: State | None = None) -> FastAPI:
    bus = RevisionBus()
    ca_path = Path(settings.data_dir) / CA_CERT
    ca_fingerprint = fingerprint(ca_path.read_bytes()) if ca_path.exists() else None
    if state is None:
        engine = make_engine(settings.db)
        migrate(engine)
        state = State(engine, publish=bus.publish, ca_fingerprint=ca_fingerprint)
    else:
        state.publish = bus.publish

    async def follow_database() -> None:
        """Commits by another replica sharing the database: one read of the revision a second for
        the whole process, published on the bus, instead of one per waiting gateway."""
        trimmer, polls = Trimmer(), 0
        while True:
            await asyncio.sleep(REPLICA_POLL_S)
            polls += 1
            if polls % 60 == 0:  # once a minute: give back what a burst of connections left (memory.py)
                await run_in_threadpool(trimmer.maybe_trim)
                try:  # and keep the audit log within its retention (settings audit_keep, audit_days)
                    await run_in_threadpool(state.prune_audit, settings.audit_keep, settings.audit_days)
                except Exception as exc:  # the database may be briefly away; the next minute retries
                    log_event(log, "controller.audit_prune_failed", logging.WARNING, error=exc)
            try:
                # reloads only when the revision moved (another replica wrote), which also makes
                # this process forget remembered credentials: a revocation there counts here
                revision = (await run_in_threadpool(state.snapshot)).revision
            except Exception as exc:  # the database may be briefly away; the next second retries
                log_event(log, "controller.db_poll_failed", logging.WARNING, error=exc)
                continue
            if revision > bus.revision:
                bus.publish(revision)

    cloudsync = CloudSync(state)

    async def drive_clouds() -> None:
        """The provider reconciler (cloudsync.py): a pass after each change (at most one every
        PROVIDER_GAP_S, changes come in bursts) and every provider_interval; transient cloud errors
        back off exponentially."""
        last_revision, last_pass = -1, -settings.provider_interval
        while True:
            if cloudsync.failures:
                await asyncio.sleep(cloudsync.backoff())
            else:
                while bus.revision == last_revision:
                    remaining = settings.provider_interval - (time.monotonic() - last_pass)
                    if remaining <= 0:
                        break
                    await bus.wait(remaining)
            gap = PROVIDER_GAP_S - (time.monotonic() - last_pass)
            if gap > 0:
                await asyncio.sleep(gap)
            last_revision, last_pass = bus.revision, time.monotonic()
            try:
                await run_in_threadpool(cloudsync.run_once)
            except Exception as exc:  # a bug must not end the loop: the next pass retries
                log.exception("provider reconciler pass failed: %s", type(exc).__name__)
                cloudsync.failures += 1

    bursts = BurstLoop(state, cloudsync.leadership.held, provider_for)

    async def drive_bursts() -> None:
        """The burst loop (burstloop.py): every burst_interval seconds, on the provider leader."""
        while True:
            await asyncio.sleep(settings.burst_interval)
            try:
                await run_in_threadpool(bursts.run_once)
            except Exception as exc:  # a bug must not end the loop: the next pass retries
                log.exception("burst pass failed: %s", type(exc).__name__)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        bus.bind(asyncio.get_running_loop())
        bus.revision = await run_in_threadpool(state.db_revision)
        follower = asyncio.create_task(follow_database())
        clouds = asyncio.create_task(drive_clouds())
        burst_task = asyncio.create_task(drive_bursts())
        try:
            yield
        finally:
            follower.cancel()
            clouds.cancel()
            burst_task.cancel()
            cloudsync.leadership.release()

    app = FastAPI(
        title="cloudgw controller",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load Swagger UI from a CDN: /docs is our own page (routes/web.py)
        redoc_url=None,
        description="Sites, gateways, networks, pools and connections; the mapping service; the "
        "gateways' watch feed. Every call needs `Authorization: Bearer <token>`.",
    )
    app.state.cloudgw = state
    app.state.auth_cache = PrincipalCache()
    app.state.auth_failures = AuthFailures(settings.auth_failures_per_minute)
    app.state.bus = bus
    app.state.settings = settings
    app.state.ca_path = ca_path if ca_path.exists() else None
    app.state.cloudsync = cloudsync
    app.state.bursts = bursts
    app.state.questions = Questions(wake=bus.nudge)

    @app.exception_handler(InvalidInput)
    async def _invalid(_request: Request, exc: InvalidInput) -> JSONResponse:
        status = 409 if any(p.conflict for p in exc.problems) else 422
        return JSONResponse(_problems_body("refused", exc.problems), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _malformed(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = pydantic_problems(exc)
        for index, problem in enumerate(problems):
            field = problem.field.removeprefix("body.").removeprefix("body").removeprefix("query.")
            problems[index] = Problem(field, problem.message, problem.fix)
        return JSONResponse(_problems_body("invalid", problems), status_code=422)

    @app.exception_handler(NotFound)
    async def _not_found(_request: Request, exc: NotFound) -> JSONResponse:
        body = {**_problems_body("not found", [Problem(exc.kind, str(exc))]), "name": exc.name}
        return JSONResponse(body, status_code=404)

    @app.exception_handler(Unauthorized)
    async def _unauthorized(_request: Request, exc: Unauthorized) -> JSONResponse:
        error = {401: "unauthorized", 429: "too many requests"}.get(exc.status, "forbidden")
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if exc.status == 429:
            headers = {"Retry-After": "60"}
        body = {"error": error, "message": str(exc), "reason": exc.reason}
        return JSONResponse(body, status_code=exc.status, headers=headers)

    @app.get("/healthz", tags=["status"], summary="Liveness (no authentication, no details)")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    app.state.telemetry = Telemetry()
    app.state.metrics, app.state.watch_metrics = registry(state, settings.offline_after, lambda: bus.loop)
    # The agent's routes first: a request is matched against each route in turn, and a change to
    # 1,000 gateways is 1,000 watch requests (matching them behind the CRUD routes was a tenth of the
    # controller's time); none of the others begins with /api/v1/agent/, so the order changes nothing
    for router in [
        agent.router,
        *routers,
        mapping.router,
        admin.router,
        overview.router,
        topology.router,
        providers.router,
        explain.router,
        external.router,
        burst.router,
        web.router,
    ]:
        app.include_router(router, responses=schemas.ERROR_RESPONSES)
    app.mount("/static", StaticFiles(directory=web.STATIC), name="static")
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestGuard)  # outermost: before routing, before any body is read
    return app
