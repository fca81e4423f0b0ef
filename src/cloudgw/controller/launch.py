"""`POST /api/v1/gateways/{name}/bootstrap`: a one-time join token, the cloud-init user-data that uses
it, and (with launch) the gateway machine started through its site's provider; the site's cloud block
then names the new machine's LAN interface, and the provider reconciler takes it from there."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from cloudgw.api import schemas
from cloudgw.controller import config_writes, gateway_calls
from cloudgw.controller.state import State, refuse
from cloudgw.errors import InvalidInput, NotFound, Problem
from cloudgw.logs import log_event
from cloudgw.model.cloud import AwsCloud, parse_items
from cloudgw.providers.base import ProviderError
from cloudgw.providers.registry import provider_for
from cloudgw.providers.userdata import user_data


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def bootstrap(
    state: State, actor: str, name: str, request: schemas.BootstrapRequest, public_url: str | None, seen_as: str
) -> schemas.BootstrapResult:
    topo = state.snapshot().topo
    gateway = topo.gateways.get(name)
    if gateway is None:
        raise NotFound("gateway", name)
    site = topo.sites[gateway.site]
    url = public_url or seen_as
    problems = []
    if request.launch:
        if public_url is None or _loopback(public_url):
            problems.append(
                Problem(
                    "launch",
                    "the controller has no public URL a new cloud machine could reach",
                    "start the controller with --public-url https://ADDRESS:8443",
                )
            )
        cloud = parse_items(site.provider, site.cloud)
        if cloud is None:
            problems.append(
                Problem(
                    "launch",
                    f"site '{site.name}' has no aws or openstack block: cloudgw cannot start machines there",
                    "add the site's cloud block (docs/providers.md), or start the machine yourself with the user-data",
                )
            )
        for field in ("image", "size"):
            if getattr(request, field) is None:
                problems.append(Problem(field, f"launching needs an {field}", f"pass --{field}"))
    refuse(problems, "bootstrap")
    token_name = f"bootstrap-{name}-{int(time.time() * 1000)}"
    _, token = gateway_calls.create_token(
        state,
        actor,
        schemas.TokenCreate(name=token_name, role="join", gateway=name, ttl_hours=request.ttl_hours),
    )
    data = user_data(name, site.name, url, token, request.package)
    result = schemas.BootstrapResult(gateway=name, controller_url=url, user_data=data, token_name=token_name)
    if not request.launch:
        return result
    provider = provider_for(site)
    lan_ip = gateway.lan_addresses[0] if gateway.lan_addresses else None
    try:
        assert request.image is not None and request.size is not None
        launched = provider.launch(name, lan_ip, request.image, request.size, data, request.key_name)
    except ProviderError as exc:
        gateway_calls.delete_token(state, actor, token_name)  # nothing usable left behind
        fix = "check the image, the size and the controller's cloud credentials"
        raise InvalidInput([Problem("launch", str(exc), fix)], what="launch") from exc
    log_event(gateway_calls.log, "gateway.launched", gateway=name, site=site.name, **launched)
    key = "gateway_eni" if isinstance(parse_items(site.provider, site.cloud), AwsCloud) else "gateway_port"
    block = {**dict(site.cloud), key: launched["interface"], "gateway": name}
    config_writes.operation("sites", "update")(
        state, actor, site.name, schemas.SiteUpdate.model_validate({site.provider: block})
    )
    return result.model_copy(update={"launched": launched})
