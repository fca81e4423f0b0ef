"""`GET /api/v1/sites/{name}/export-config`: the stock WireGuard router of an external site, as a
wg-quick file or `ip`/`wg` commands (mapping/export.py). Public keys and addresses only."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse

from cloudgw.controller import auth
from cloudgw.controller.state import State
from cloudgw.errors import InvalidInput, NotFound, Problem
from cloudgw.mapping.export import INTERFACE, KEY_FILE, commands, router_config, wg_quick

router = APIRouter(prefix="/api/v1", tags=["topology"])


@router.get(
    "/sites/{name}/export-config",
    response_class=PlainTextResponse,
    summary="The WireGuard configuration of an external site's stock router",
)
def export_config(
    name: str,
    format: Literal["wg-quick", "commands"] = Query("wg-quick", description="a wg-quick file, or ip/wg commands"),
    interface: str = Query(INTERFACE, pattern=r"^[A-Za-z0-9_.-]{1,15}$", description="the router's WireGuard device"),
    key_file: str = Query(KEY_FILE, pattern=r"^/[A-Za-z0-9_./-]{1,200}$", description="its private key's path there"),
    state: State = Depends(auth.get_state),
    _who: auth.Principal = Depends(auth.reader),
) -> PlainTextResponse:
    snap = state.snapshot()
    site = snap.topo.sites.get(name)
    if site is None:
        raise NotFound("site", name)
    if not site.external:
        raise InvalidInput(
            [
                Problem(
                    "name",
                    f"site '{name}' runs cloudgw agents: they configure themselves",
                    f"make it external (cloudgw site update {name} --kind external) for a stock WireGuard router",
                )
            ],
            what="export",
        )
    if not snap.topo.gateways_of(name):
        raise InvalidInput(
            [Problem("name", f"external site '{name}' has no router yet", f"cloudgw gateway add ROUTER --site {name}")],
            what="export",
        )
    config = router_config(snap.topo, name, snap.revision, snap.index, interface, key_file)
    text = wg_quick(config) if format == "wg-quick" else commands(config)
    return PlainTextResponse(text, headers={"X-Cloudgw-Revision": str(snap.revision)})
