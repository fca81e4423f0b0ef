"""The clouds: what the provider reconciler did per site, and preflight (every trap, before any change)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

from cloudgw.api import schemas
from cloudgw.controller import auth
from cloudgw.controller.cloudsync import status_rows
from cloudgw.controller.db.models import ProviderStatusRow
from cloudgw.controller.launch import bootstrap
from cloudgw.controller.pages import PageParams, next_cursor, page_params
from cloudgw.controller.state import State
from cloudgw.errors import InvalidInput
from cloudgw.model.paging import Key, page_of
from cloudgw.model.topologyfile import check_file, to_topology
from cloudgw.providers.registry import preflight

router = APIRouter(prefix="/api/v1", tags=["providers"])


@router.get(
    "/providers",
    response_model=list[schemas.ProviderStatus],
    summary="Each driven cloud: state, last error; by site, a page at a time (X-Total-Count, Link rel=next)",
)
def providers(
    request: Request,
    response: Response,
    page: PageParams = Depends(page_params),
    state: State = Depends(auth.get_state),
    _who: auth.Principal = Depends(auth.reader),
) -> Any:
    # the body stays the bare list it was in v0.1: the page travels in headers, as GitHub's does
    found = page_of(status_rows(state), _by_site, page.after("providers", (str,)), page.limit)
    response.headers["X-Total-Count"] = str(found.total)
    cursor = next_cursor("providers", found.next_key)
    if cursor is not None:
        url = request.url.include_query_params(cursor=cursor, limit=page.limit)
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    return found.items


def _by_site(row: dict[str, Any]) -> Key:
    return (row["site"],)


@router.post(
    "/preflight",
    response_model=schemas.PreflightResult,
    summary="Every known trap of the live topology, or of a proposed one, with the fix; changes nothing",
)
def run_preflight(
    body: schemas.PreflightRequest | None = Body(None),
    state: State = Depends(auth.get_state),
    _who: auth.Principal = Depends(auth.admin),
) -> Any:
    snap = state.snapshot()
    topo = snap.topo
    if body is not None and body.topology is not None:
        problems = check_file(body.topology)
        if problems:
            raise InvalidInput(problems, what="topology")
        proposed = to_topology(body.topology)
        proposed.announcements = {
            k: a
            for k, a in topo.announcements.items()
            if a.network in proposed.networks and a.gateway in proposed.gateways
        }
        proposed.inventory = dict(topo.inventory)
        topo = proposed
    with state.session() as session:
        ledgers = {row.site: dict(row.owned or {}) for row in session.query(ProviderStatusRow)}
    findings = preflight(topo, ledgers)
    return schemas.PreflightResult(
        ok=not any(f.severity == "error" for f in findings),
        findings=[schemas.FindingBody(**f.as_dict()) for f in findings],
    )


@router.post(
    "/gateways/{name}/bootstrap",
    response_model=schemas.BootstrapResult,
    summary="Cloud-init user-data with a one-time join token for a new gateway; optionally launch it",
)
def bootstrap_gateway(
    name: str,
    request: Request,
    body: schemas.BootstrapRequest = Body(schemas.BootstrapRequest()),
    state: State = Depends(auth.get_state),
    who: auth.Principal = Depends(auth.admin),
) -> Any:
    seen_as = str(request.base_url).rstrip("/")
    return bootstrap(state, who.name, name, body, request.app.state.settings.public_url, seen_as)
